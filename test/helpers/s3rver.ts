// A real S3-compatible server for tests: s3rver (npm) run under Node in a child process, which a
// test can kill and restart on the same port and directory to simulate an outage.

import type { Subprocess } from "bun";

const S3RVER_BIN = Bun.resolveSync("s3rver/bin/s3rver.js", import.meta.dir);

/** An s3rver child process on 127.0.0.1; restartable on the same port and directory. */
export class S3rver {
  private constructor(
    private proc: Subprocess<"ignore", "pipe", "pipe">,
    readonly dir: string,
    readonly port: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Port 0 picks a free one. */
  static async start(dir: string, port = 0): Promise<S3rver> {
    const node = Bun.which("node");
    if (!node) throw new Error("the S3 tests run s3rver under Node, and there is no node on PATH");
    // --openssl-legacy-provider: s3rver encrypts continuation tokens with DES, which OpenSSL 3
    // disables, so paging would fail with a 500 without it (toolchain.md §6).
    const proc = Bun.spawn([node, "--openssl-legacy-provider", S3RVER_BIN, "-d", dir, "-a", "127.0.0.1", "-p", String(port), "--silent"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const listening = await readUntil(proc.stdout, /listening on 127\.0\.0\.1:(\d+)/, 10_000).catch(async (e) => {
      proc.kill("SIGKILL");
      throw new Error(`s3rver did not start: ${e.message}; stderr: ${await new Response(proc.stderr).text()}`);
    });
    return new S3rver(proc, dir, Number(listening[1]));
  }

  /** Bun's S3Client cannot create buckets; s3rver takes an unsigned PUT. */
  async createBucket(name: string): Promise<void> {
    const res = await fetch(`${this.endpoint}/${name}`, { method: "PUT" });
    if (!res.ok) throw new Error(`creating bucket ${name}: ${res.status} ${await res.text()}`);
  }

  async kill(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }

  async restart(): Promise<void> {
    const again = await S3rver.start(this.dir, this.port);
    this.proc = again.proc;
  }
}

async function readUntil(stream: ReadableStream<Uint8Array>, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const reader = stream.getReader();
  const deadline = Bun.sleep(timeoutMs).then(() => {
    throw new Error(`no match for ${re} within ${timeoutMs} ms`);
  });
  let text = "";
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), deadline]);
      if (done) throw new Error(`exited before printing ${re}; said: ${text}`);
      text += new TextDecoder().decode(value);
      const m = text.match(re);
      if (m) return m;
    }
  } finally {
    reader.releaseLock();
  }
}
