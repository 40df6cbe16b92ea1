// Fuzz: every real fixture, mutated (bit flips, truncation, byte runs, splices, gzip of the
// mutant), through every ingest edge (/ingest in each format, OTLP/HTTP) and the real distributor.
// Each input must end as a 4xx naming a problem or as valid profiles; never a 5xx, a throw that
// is not a client error, a hang, or memory that keeps growing. Deterministic: a fixed seed.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import type { Profile } from "../storage/model/profile.ts";
import { handleIngest } from "../server/api/ingest.ts";
import { handleOtlpHttp } from "../server/api/otlp.ts";
import { defaultConfig } from "../server/config.ts";
import { createDistributor } from "../server/distributor.ts";
import { ApiError, errorStatus } from "../server/errors.ts";
import type { Ingester, IngestItem } from "../server/ingester.ts";
import { FIXTURES } from "./helpers/pprof-oracle.ts";

const MUTANTS_PER_FIXTURE = Number(process.env.HEARTH_FUZZ_MUTANTS ?? 60);
/** Far above any real parse here (a few ms): only a hang or a blow-up gets near it. */
const HANG_MS = 5_000;

/** xorshift32: the same mutants on every run. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % Math.max(1, n);
  };
}

function mutate(src: Uint8Array, r: (n: number) => number): Uint8Array {
  const b = Uint8Array.from(src);
  switch (r(6)) {
    case 0: // flip a few bits
      for (let i = 0, n = 1 + r(8); i < n && b.length; i++) b[r(b.length)] ^= 1 << r(8);
      return b;
    case 1: // truncate
      return b.subarray(0, r(b.length));
    case 2: // overwrite a run with one byte (0x00, 0xff or a varint continuation byte)
      if (b.length) {
        const at = r(b.length);
        b.fill([0x00, 0xff, 0x80][r(3)], at, Math.min(b.length, at + 1 + r(64)));
      }
      return b;
    case 3: {
      // duplicate a slice in place (repeated fields, lengths that now lie)
      const at = r(b.length + 1);
      const len = r(Math.min(256, b.length - at + 1));
      const out = new Uint8Array(b.length + len);
      out.set(b.subarray(0, at + len));
      out.set(b.subarray(at), at + len);
      return out;
    }
    case 4: // random bytes at a random place
      for (let i = 0, at = r(b.length), n = 1 + r(16); i < n && at + i < b.length; i++) b[at + i] = r(256);
      return b;
    default: {
      // splice: the head of the input with a shifted tail
      const cut = r(b.length);
      const from = r(b.length);
      const out = new Uint8Array(cut + (b.length - from));
      out.set(b.subarray(0, cut));
      out.set(b.subarray(from), cut);
      return out;
    }
  }
}

/** What a stored profile must satisfy for queries and blocks to work on it. */
function checkProfile(p: Profile): string | null {
  const k = p.sampleTypes.length;
  if (k === 0) return "no sample types";
  const s = p.samples;
  if (s.locStart.length !== s.count + 1) return "locStart length";
  if (s.values.length !== s.count * k) return "values length";
  if (s.locStart[s.count] !== s.locs.length) return "locs length";
  for (let i = 0; i < s.count; i++) if (s.locStart[i] > s.locStart[i + 1]) return "locStart not monotone";
  for (const l of s.locs) if (l >= p.locations.length) return `location ${l} out of range`;
  for (const v of s.values) if (!Number.isFinite(v)) return "non-finite value";
  for (const loc of p.locations) {
    if (loc.mapping >= p.mappings.length) return "mapping out of range";
    for (const line of loc.lines) if (line.fn < 0 || line.fn >= p.functions.length) return "function out of range";
  }
  if (s.labels && s.labels.length !== s.count) return "labels length";
  return null;
}

interface Edge {
  name: string;
  fixtures: { file: string; bytes: Uint8Array }[];
  send: (body: Uint8Array) => Promise<number>;
  /** Every byte string is a valid body (lines: each line is a stack), so no mutant is refused. */
  acceptsAnything?: boolean;
}

const stored: IngestItem[] = [];
const ingester = {
  async push(_tenant: string, items: IngestItem[]) {
    for (const it of items) stored.push(it);
  },
} as unknown as Ingester;
const config = defaultConfig();
const limits = { ...config.limits, rejectOlderThan: 0, rejectNewerThan: 0, ingestionRateMb: 0 };
const distributor = createDistributor({ ingester, limits });

/** /ingest with a query string and content type; the status the client would get. */
async function ingest(query: string, body: Uint8Array, contentType = "application/octet-stream"): Promise<number> {
  const req = new Request(`http://fuzz/ingest?${query}`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: { "content-type": contentType } });
  try {
    await handleIngest(req, "fuzz", distributor, limits);
    return 200;
  } catch (e) {
    if (!(e instanceof ApiError)) throw new Error(`not a client error: ${e instanceof Error ? e.stack : e}`);
    if (!e.message) throw new Error("client error without a message");
    return errorStatus(e);
  }
}

function multipart(fields: Record<string, Uint8Array>): { body: Uint8Array; type: string } {
  const boundary = "fuzzboundary7d3a";
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const [name, bytes] of Object.entries(fields)) {
    parts.push(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), bytes, enc.encode("\r\n"));
  }
  parts.push(enc.encode(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

const files = (dir: string, keep: (f: string) => boolean) =>
  readdirSync(FIXTURES + dir)
    .filter(keep)
    .map((f) => ({ file: `${dir}/${f}`, bytes: new Uint8Array(readFileSync(`${FIXTURES}${dir}/${f}`)) }));
// Fuzz the decompressed bytes: mutating gzip mostly tests the CRC.
const plain = (b: Uint8Array) => (b[0] === 0x1f && b[1] === 0x8b ? new Uint8Array(gunzipSync(b)) : b);

const pprofs = files("pprof", (f) => !f.endsWith(".json")).map((x) => ({ ...x, bytes: plain(x.bytes) }));
const jfrs = files("jfr", (f) => f.endsWith(".jfr.gz")).map((x) => ({ ...x, bytes: plain(x.bytes) }));
const labelSnapshots = files("jfr", (f) => f.endsWith(".labels.pb.gz")).map((x) => ({ ...x, bytes: plain(x.bytes) }));
const folded = [{ file: "folded (built)", bytes: new TextEncoder().encode("main;serve;parse 120\nmain;serve;write 30\nmain;gc 7\nworker;loop 55\n") }];

const edges: Edge[] = [
  { name: "pprof raw (/ingest?format=pprof)", fixtures: pprofs, send: (b) => ingest("name=fuzz.app&format=pprof", b) },
  {
    name: "pprof multipart (SDKs)",
    fixtures: pprofs.slice(0, 8),
    send: (b) => {
      const m = multipart({ profile: b });
      return ingest("name=fuzz.app&spyName=gospy", m.body, m.type);
    },
  },
  { name: "JFR raw", fixtures: jfrs, send: (b) => ingest("name=fuzz.java&format=jfr", b) },
  {
    name: "JFR labels snapshot (multipart)",
    fixtures: labelSnapshots,
    send: (b) => {
      const m = multipart({ jfr: jfrs[0].bytes, labels: b });
      return ingest("name=fuzz.java&format=jfr", m.body, m.type);
    },
  },
  { name: "speedscope", fixtures: files("speedscope", () => true), send: (b) => ingest("name=fuzz.app&format=speedscope", b, "application/json") },
  { name: "folded", fixtures: folded, send: (b) => ingest("name=fuzz.app.cpu", b, "text/plain") },
  { name: "lines", fixtures: folded, send: (b) => ingest("name=fuzz.app.cpu&format=lines", b, "text/plain"), acceptsAnything: true },
  { name: "tree", fixtures: [{ file: "tree (built)", bytes: treeBody() }], send: (b) => ingest("name=fuzz.app.cpu&format=tree", b) },
  { name: "trie", fixtures: [{ file: "trie (built)", bytes: trieBody() }], send: (b) => ingest("name=fuzz.app.cpu&format=trie", b) },
  {
    name: "OTLP/HTTP protobuf",
    fixtures: files("otlp", (f) => f.endsWith(".pb.bin")),
    send: async (b) => (await handleOtlpHttp(new Request("http://fuzz/v1development/profiles", { method: "POST", body: b as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/x-protobuf" } }), { distributor, limits, multitenancy: false })).status,
  },
  {
    name: "OTLP/HTTP JSON",
    fixtures: files("otlp", (f) => f.endsWith(".pb.json")),
    send: async (b) => (await handleOtlpHttp(new Request("http://fuzz/v1development/profiles", { method: "POST", body: b as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/json" } }), { distributor, limits, multitenancy: false })).status,
  },
];

function uvarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
function str(s: string): number[] {
  return [...uvarint(s.length), ...new TextEncoder().encode(s)];
}

/** tree: root "", children main → {serve 3, gc 2}, worker 4 (name, self, child count, pre-order). */
function treeBody(): Uint8Array {
  const node = (name: string, self: number, kids: number[][]) => [...str(name), ...uvarint(self), ...uvarint(kids.length), ...kids.flat()];
  return Uint8Array.from(node("", 0, [node("main", 0, [node("serve", 3, []), node("gc", 2, [])]), node("worker", 4, [])]));
}

/** trie: prefix fragments, value, child count. */
function trieBody(): Uint8Array {
  const node = (frag: string, value: number, kids: number[][]) => [...str(frag), ...uvarint(value), ...uvarint(kids.length), ...kids.flat()];
  return Uint8Array.from(node("", 0, [node("main;", 0, [node("serve", 3, []), node("gc", 2, [])]), node("worker", 4, [])]));
}

describe("fuzz: mutated fixtures through every ingest edge", () => {
  let seed = 20261125;
  for (const edge of edges) {
    test(`${edge.name}: ${edge.fixtures.length} fixture(s) × ${MUTANTS_PER_FIXTURE} mutants → 4xx or valid profiles`, async () => {
      expect(edge.fixtures.length).toBeGreaterThan(0);
      const r = rng(seed++);
      const statuses = new Map<number, number>();
      let slowest = 0;
      const rss0 = process.memoryUsage().rss;
      for (const fx of edge.fixtures) {
        for (let i = 0; i < MUTANTS_PER_FIXTURE; i++) {
          let body = mutate(fx.bytes, r);
          if (i % 7 === 6) body = new Uint8Array(gzipSync(body)); // the same mutant behind gzip
          stored.length = 0;
          const t0 = performance.now();
          let status: number;
          try {
            status = await edge.send(body);
          } catch (e) {
            throw new Error(`${fx.file} mutant ${i}: ${e instanceof Error ? e.message : e}`);
          }
          const ms = performance.now() - t0;
          slowest = Math.max(slowest, ms);
          expect(ms, `${fx.file} mutant ${i} took ${ms.toFixed(0)} ms`).toBeLessThan(HANG_MS);
          expect(status >= 200 && status < 500, `${fx.file} mutant ${i}: status ${status}`).toBe(true);
          if (status === 200) for (const it of stored) expect(checkProfile(it.profile), `${fx.file} mutant ${i}`).toBeNull();
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }
      Bun.gc(true);
      // Mutants of a few-MB fixture cannot need hundreds of MB that stay: a leak or a runaway allocation would.
      expect(process.memoryUsage().rss - rss0).toBeLessThan(512 * 2 ** 20);
      // The mutants reach both outcomes, so the edge really parsed them (not all refused up front).
      const summary = [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(" ");
      console.log(`fuzz ${edge.name}: ${summary}; slowest ${slowest.toFixed(1)} ms`);
      expect([...statuses.keys()].some((s) => s >= 400)).toBe(!edge.acceptsAnything);
    }, 120_000);
  }
});
