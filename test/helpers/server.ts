// Starts the real Hearth process on a free 127.0.0.1 port for end-to-end tests.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "../..");

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export function tempDir(prefix = "hearth-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunningServer {
  url: string;
  port: number;
  dataDir: string;
  proc: Subprocess;
  output(): string;
  /** The /ready statuses seen while waiting for start-up (0 = no answer yet). */
  readyStatuses: number[];
  /** SIGTERM and wait for exit. */
  stop(): Promise<number>;
  /** SIGKILL: no chance to flush. */
  kill9(): Promise<void>;
}

export async function startServer(opts: { dataDir?: string; args?: string[]; env?: Record<string, string> } = {}): Promise<RunningServer> {
  const port = await freePort();
  const dataDir = opts.dataDir ?? tempDir();
  let out = "";
  // The fixtures keep their original (years-old) timestamps, so retention, the free-disk guard and
  // the ingestion window's lower end are off unless a test turns them on; so is the ingestion rate
  // limit, which tests that push fixtures back to back would otherwise hit.
  const defaults = ["--retention", "0", "--min-free-disk", "0", "--limits.reject-older-than", "0", "--limits.ingestion-rate-mb", "0"];
  const proc = Bun.spawn([process.execPath, join(ROOT, "server/main.ts"), "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, ...defaults, ...(opts.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) out += dec.decode(chunk);
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>);
  void drain(proc.stderr as ReadableStream<Uint8Array>);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  const readyStatuses: number[] = [];
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${out}`);
    try {
      const r = await fetch(`${url}/ready`);
      readyStatuses.push(r.status);
      if (r.status === 200) break;
    } catch {
      readyStatuses.push(0);
    }
    if (Date.now() > deadline) {
      proc.kill(9);
      throw new Error(`server not ready after 30 s:\n${out}`);
    }
    await Bun.sleep(20);
  }
  return {
    url,
    port,
    dataDir,
    proc,
    output: () => out,
    readyStatuses,
    async stop() {
      proc.kill("SIGTERM");
      return await proc.exited;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

export function removeDir(dir: string) {
  rmSync(dir, { recursive: true, force: true });
}
