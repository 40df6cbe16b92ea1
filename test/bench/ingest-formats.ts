// Ingest per wire format: each format's body through the in-process app (routing, body parsing,
// decode, distributor, ingester; WAL without fsync, a fresh data dir per format), against a floor
// of the cheapest work those same bytes need anyway (gunzip, a bare wire walk, a text split or a
// JSON.parse), measured in the same run. The text and binary tree formats are built from the stacks
// of one real profile, so their rows compare formats rather than inputs.

import { create, fromBinary, toBinary, toJsonString, ScalarType, type DescMessage } from "@bufbuild/protobuf";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExportProfilesServiceRequestSchema } from "../../server/api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import { PushRequestSchema } from "../../server/api/gen/push/v1/push_pb.ts";
import { otlpToIngestItems } from "../../server/ingest/otlp/otlp-ingest.ts";
import { parseTree, parseTrie } from "../../server/ingest/trie.ts";
import { collapseProfile } from "../../storage/model/collapse.ts";
import { openApp } from "./app-client.ts";
import { partMain, progress } from "./child.ts";
import { loadFixture, unzip } from "./pprof-template.ts";
import { fmt, type Table } from "./table.ts";
import { wireWalk } from "./wire-walk.ts";

const SHARED = new URL("../../../shared/fixtures/", import.meta.url).pathname;
/** The real profile every format carries (a Go heap profile: 370 distinct stacks). */
const SOURCE = "heap.pb.gz";
/** About this many lines in the `lines` body (one line per sample, so values are scaled down). */
const LINES = 1000;
/** Rounds of at least ROUND_MS each: every measurement takes ≥ 1.2 s. */
const ROUNDS = 6;
const ROUND_MS = 200;
/** Per format, before any measurement. */
const WARM_MS = 300;

interface Case {
  name: string;
  input: string;
  /** Path and query of request i. */
  url: (i: number) => string;
  type?: string;
  /** Request i sends bodies[i % length]; all of one size. */
  bodies: Uint8Array<ArrayBuffer>[];
  floorName: string;
  floor: () => unknown;
}

// ---- the floors' bare walks (module-level state, as in wire-walk.ts: JSC runs it faster) ----

let buf: Uint8Array = new Uint8Array(0);
let pos = 0;
let sum = 0;

/** An unsigned varint, exact up to 2^53 (lengths can pass 2^21). */
function varint(): number {
  let b = buf[pos++];
  if (b < 0x80) return b;
  let x = b & 0x7f;
  b = buf[pos++];
  if (b < 0x80) return x | (b << 7);
  x |= (b & 0x7f) << 7;
  b = buf[pos++];
  if (b < 0x80) return x | (b << 14);
  x |= (b & 0x7f) << 14;
  let mul = 2097152;
  for (;;) {
    b = buf[pos++];
    if (b < 0x80) return x + b * mul;
    if (pos > buf.length) throw new Error("walk: varint runs past the end");
    x += (b & 0x7f) * mul;
    mul *= 128;
  }
}

const begin = (b: Uint8Array) => {
  buf = Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  pos = 0;
  sum = 0;
};

// A protobuf walk driven by a generated schema: per message, field number → sub-message plan,
// PACKED (packed varints) or SKIP (strings, bytes, packed fixed-width).
const SKIP = -1;
const PACKED = -2;
const VARINT_SCALARS = new Set([ScalarType.INT32, ScalarType.INT64, ScalarType.UINT32, ScalarType.UINT64, ScalarType.SINT32, ScalarType.SINT64, ScalarType.BOOL]);
const plans: Int32Array[] = [];
const planIds = new Map<DescMessage, number>();

function planOf(d: DescMessage): number {
  const have = planIds.get(d);
  if (have !== undefined) return have;
  const id = plans.length;
  planIds.set(d, id);
  const plan = new Int32Array(Math.max(0, ...d.fields.map((f) => f.number)) + 1).fill(SKIP);
  plans.push(plan);
  for (const f of d.fields) {
    if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) plan[f.number] = planOf(f.message!);
    else if (f.fieldKind === "list" && (f.listKind === "enum" || VARINT_SCALARS.has(f.scalar!))) plan[f.number] = PACKED;
  }
  return id;
}

/** Visits every field of a `schema` message, recursing into sub-messages; allocates nothing. */
function schemaWalk(bytes: Uint8Array, root: number): number {
  begin(bytes);
  walkMessage(buf.length, root);
  return sum;
}

function walkMessage(end: number, id: number): void {
  const plan = plans[id];
  while (pos < end) {
    const tag = varint();
    const field = tag >>> 3;
    switch (tag & 7) {
      case 0:
        sum = (sum + varint()) | 0;
        break;
      case 2: {
        const e = varint() + pos;
        if (e > end) throw new Error(`schema walk: truncated at ${pos}`);
        const k = field < plan.length ? plan[field] : SKIP;
        if (k >= 0) walkMessage(e, k);
        else if (k === PACKED) while (pos < e) sum = (sum + varint()) | 0;
        else pos = e;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`schema walk: wire type ${tag & 7} at ${pos}`);
    }
  }
}

/** JFR: every chunk's events (metadata and constant pools included), by their size and type only. */
function jfrWalk(bytes: Uint8Array): number {
  begin(bytes);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let start = 0; start + 68 <= buf.length; ) {
    const end = start + Number(dv.getBigUint64(start + 8));
    for (pos = start + 68; pos < end; ) {
      const at = pos;
      const size = varint();
      sum = (sum + varint()) | 0; // the event type
      pos = at + size;
    }
    start = end;
  }
  return sum;
}

const names = new TextDecoder();

/**
 * trie and tree bodies: `uvarint len, name, uvarint value, uvarint children` per node, each name
 * decoded (the names are most of the bytes, and any reader must turn them into strings).
 */
function nodeWalk(bytes: Uint8Array): number {
  begin(bytes);
  while (pos < buf.length) {
    const len = varint();
    sum = (sum + names.decode(buf.subarray(pos, pos + len)).length) | 0;
    pos += len;
    sum = (sum + varint() + varint()) | 0;
  }
  return sum;
}

const textSplit = (b: Uint8Array) => new TextDecoder().decode(b).split("\n").length;
const jsonParse = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

// ---- body encoders: stacks ("root;…;leaf" → value) in each format ----

/** The node lists of trie and tree: uvarints and length-prefixed byte strings. */
class Writer {
  private out: number[] = [];
  uvarint(v: number) {
    for (; v >= 0x80; v = Math.floor(v / 128)) this.out.push((v % 128) | 0x80);
    this.out.push(v);
  }
  bytes(s: Uint8Array) {
    this.uvarint(s.length);
    for (const x of s) this.out.push(x);
  }
  done = () => Uint8Array.from(this.out);
}

const utf8 = new TextEncoder();

/** transporttrie as the old agents send it: a radix trie over the keys' UTF-8 bytes. */
function encodeTrie(stacks: Map<string, number>): Uint8Array<ArrayBuffer> {
  const keys = [...stacks].map(([k, v]) => ({ k: utf8.encode(k), v })).sort((a, b) => Buffer.compare(a.k, b.k));
  const w = new Writer();
  const common = (a: Uint8Array, b: Uint8Array, d: number) => {
    while (d < a.length && d < b.length && a[d] === b[d]) d++;
    return d;
  };
  // keys[lo, hi) share their first d bytes; this node's fragment is bytes [from, d) of them.
  const node = (lo: number, hi: number, from: number, d: number) => {
    w.bytes(keys[lo].k.subarray(from, d));
    let i = lo;
    // Sorted: a key ending at this node comes first.
    w.uvarint(keys[lo].k.length === d ? keys[i++].v : 0);
    const groups: [number, number][] = [];
    while (i < hi) {
      let j = i + 1;
      while (j < hi && keys[j].k[d] === keys[i].k[d]) j++;
      groups.push([i, j]);
      i = j;
    }
    w.uvarint(groups.length);
    for (const [a, b] of groups) node(a, b, d, common(keys[a].k, keys[b - 1].k, d));
  };
  node(0, keys.length, 0, 0);
  return w.done();
}

interface TreeNode {
  self: number;
  kids: Map<string, TreeNode>;
}

/** tree: one node per frame under an unnamed root, each with its self value. */
function encodeTree(stacks: Map<string, number>): Uint8Array<ArrayBuffer> {
  const root: TreeNode = { self: 0, kids: new Map() };
  for (const [k, v] of stacks) {
    let n = root;
    for (const f of k.split(";")) {
      let c = n.kids.get(f);
      if (!c) n.kids.set(f, (c = { self: 0, kids: new Map() }));
      n = c;
    }
    n.self += v;
  }
  const w = new Writer();
  const emit = (name: string, n: TreeNode) => {
    w.bytes(utf8.encode(name));
    w.uvarint(n.self);
    w.uvarint(n.kids.size);
    for (const [f, c] of n.kids) emit(f, c);
  };
  emit("", root);
  return w.done();
}

/** A sampled speedscope file: one sample per distinct stack, weighted by its value. */
function encodeSpeedscope(stacks: Map<string, number>): Uint8Array<ArrayBuffer> {
  const index = new Map<string, number>();
  const samples = [...stacks.keys()].map((k) => k.split(";").map((f) => index.get(f) ?? (index.set(f, index.size), index.size - 1)));
  const weights = [...stacks.values()];
  const total = weights.reduce((a, b) => a + b, 0);
  const doc = {
    $schema: "https://www.speedscope.app/file-format-schema.json",
    shared: { frames: [...index.keys()].map((name) => ({ name })) },
    profiles: [{ type: "sampled", name: "heap", unit: "none", startValue: 0, endValue: total, samples, weights }],
    exporter: "hearth bench",
  };
  return utf8.encode(JSON.stringify(doc));
}

function encodeLines(stacks: Map<string, number>): Uint8Array<ArrayBuffer> {
  const total = [...stacks.values()].reduce((a, b) => a + b, 0);
  const out: string[] = [];
  for (const [k, v] of stacks) for (let n = Math.max(1, Math.round((v / total) * LINES)); n > 0; n--) out.push(k);
  return utf8.encode(out.join("\n") + "\n");
}

const encodeFolded = (stacks: Map<string, number>) => utf8.encode([...stacks].map(([k, v]) => `${k} ${v}`).join("\n") + "\n");

/** A FormData's bytes and Content-Type, built once: the bench times the server, not the client. */
async function multipart(parts: Record<string, Uint8Array<ArrayBuffer>>): Promise<{ body: Uint8Array<ArrayBuffer>; type: string }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(parts)) form.append(k, new Blob([v]), k);
  const r = new Response(form);
  // Read before the body: once the body is consumed, Bun's Response has no Content-Type any more.
  const type = r.headers.get("content-type")!;
  return { body: new Uint8Array(await r.arrayBuffer()), type };
}

function sameStacks(got: Map<string, number>, want: Map<string, number>, what: string) {
  if (got.size !== want.size || [...want].some(([k, v]) => got.get(k) !== v)) throw new Error(`${what} encoder: the server's parser reads back other stacks`);
}

// ---- the cases ----

const kib = (n: number) => `${fmt(n / 1024)} KiB`;
const file = (p: string) => new Uint8Array(readFileSync(SHARED + p));

/** /ingest?{query} for app bench-{service}-{0..49}{suffix} in turn; `time` adds from/until. */
const ingestUrl = (query: string, service: string, suffix = "", time = (_i: number) => "") => (i: number) =>
  `/ingest?${query}&name=bench-${service}-${i % 50}${suffix}${time(i)}`;
const T0 = 1767225600; // 2026-01-01, in seconds
// Text formats carry no time of their own; JFR's profile spans until - from, 10 s as agents send.
const from = (i: number) => `&from=${T0 + i}`;
const fromUntil = (i: number) => `&from=${T0 + 10 * i}&until=${T0 + 10 * i + 10}`;

async function cases(): Promise<Case[]> {
  const pprofGz = file(`pprof/${SOURCE}`);
  const stacks = collapseProfile(loadFixture(SOURCE), 0);
  const src = `${SOURCE} (${stacks.size} stacks)`;
  const pprofFloor = () => wireWalk(unzip(pprofGz));
  const none = { ingestionBodyLimitBytes: 0, maxProfileSizeBytes: 0 };
  // The text and tree formats name their type by the app name's suffix: these are alloc_objects.
  const text = (format: string, body: Uint8Array<ArrayBuffer>, input: string, floorName: string, floor: (b: Uint8Array) => unknown): Case => ({
    name: `/ingest?format=${format}`,
    input: `${input}, ${kib(body.length)}`,
    url: ingestUrl(`format=${format}`, format, ".alloc_objects", from),
    bodies: [body],
    floorName,
    floor: () => floor(body),
  });

  const goSdk = await multipart({ profile: pprofGz });
  const jfrGz = file("jfr/dump2.jfr.gz");
  const labelsGz = file("jfr/dump2.labels.pb.gz");
  const jfr = await multipart({ jfr: jfrGz, labels: labelsGz });
  const trie = encodeTrie(stacks);
  const tree = encodeTree(stacks);
  sameStacks(parseTrie(trie, none), stacks, "trie");
  sameStacks(parseTree(tree, none), stacks, "tree");
  const ssSmall = file("speedscope/simple.speedscope.json");
  const ssLarge = encodeSpeedscope(stacks);
  const otlp = file("otlp/otel-ebpf-profile.pb.bin");
  const otlpProfiles = otlpToIngestItems(fromBinary(ExportProfilesServiceRequestSchema, otlp)).items.length;
  const otlpPlan = planOf(ExportProfilesServiceRequestSchema);
  const pushPlan = planOf(PushRequestSchema);
  // Push bodies differ only in the service name: 50 of them, built ahead.
  const pushes = Array.from({ length: 50 }, (_, i) =>
    create(PushRequestSchema, {
      series: [
        {
          labels: [
            { name: "__name__", value: "memory" },
            { name: "service_name", value: `bench-push-${i}` },
            { name: "__delta__", value: "false" },
          ],
          samples: [{ rawProfile: pprofGz, ID: "00000000-0000-4000-8000-000000000000" }],
        },
      ],
    }),
  );
  const pushBins = pushes.map((p) => toBinary(PushRequestSchema, p) as Uint8Array<ArrayBuffer>);
  const pushJsons = pushes.map((p) => utf8.encode(toJsonString(PushRequestSchema, p)));
  const push = "/push.v1.PusherService/Push";

  return [
    {
      name: "/ingest?format=pprof (raw body)",
      input: `${SOURCE}, ${kib(pprofGz.length)} gz (${kib(unzip(pprofGz).length)} raw)`,
      url: ingestUrl("format=pprof", "pprof"),
      type: "application/octet-stream",
      bodies: [pprofGz],
      floorName: "gunzip + pprof wire walk",
      floor: pprofFloor,
    },
    {
      name: "/ingest multipart `profile` (Go SDK)",
      input: `${SOURCE} in multipart, ${kib(goSdk.body.length)}`,
      url: ingestUrl("spyName=gospy", "gosdk"),
      type: goSdk.type,
      bodies: [goSdk.body],
      floorName: "gunzip + pprof wire walk of the part",
      floor: pprofFloor,
    },
    {
      name: "/ingest?format=jfr multipart jfr + labels",
      input: `dump2.jfr.gz + labels, ${kib(jfr.body.length)} (${kib(unzip(jfrGz).length)} raw JFR)`,
      url: ingestUrl("format=jfr&spyName=javaspy", "jfr", "", fromUntil),
      type: jfr.type,
      bodies: [jfr.body],
      floorName: "gunzip both parts + JFR event walk",
      floor: () => (unzip(labelsGz), jfrWalk(unzip(jfrGz))),
    },
    text("folded", encodeFolded(stacks), `${src} as folded`, "TextDecoder + split lines", textSplit),
    text("lines", encodeLines(stacks), `${src} as ~${LINES} lines`, "TextDecoder + split lines", textSplit),
    text("trie", trie, `${src} as a radix trie`, "node walk + decode each name", nodeWalk),
    text("tree", tree, `${src} as a tree`, "node walk + decode each name", nodeWalk),
    text("speedscope", ssSmall, "simple.speedscope.json (evented)", "TextDecoder + JSON.parse", jsonParse),
    text("speedscope", ssLarge, `${src} as sampled speedscope`, "TextDecoder + JSON.parse", jsonParse),
    {
      name: "OTLP/HTTP POST /v1development/profiles",
      input: `otel-ebpf-profile.pb.bin (${otlpProfiles} profiles), ${kib(otlp.length)}`,
      url: () => "/v1development/profiles",
      type: "application/x-protobuf",
      bodies: [otlp],
      floorName: "protobuf wire walk (schema-driven)",
      floor: () => schemaWalk(otlp, otlpPlan),
    },
    {
      name: "Push, Connect binary",
      input: `1 series, ${SOURCE}, ${kib(pushBins[0].length)}`,
      url: () => push,
      type: "application/proto",
      bodies: pushBins,
      floorName: "wire walk + gunzip + pprof wire walk",
      floor: () => (schemaWalk(pushBins[0], pushPlan), wireWalk(unzip(pprofGz))),
    },
    {
      name: "Push, Connect JSON",
      input: `1 series, ${SOURCE}, ${kib(pushJsons[0].length)}`,
      url: () => push,
      type: "application/json",
      bodies: pushJsons,
      floorName: "JSON.parse + base64 + gunzip + pprof walk",
      floor: () => {
        const doc = jsonParse(pushJsons[0]) as { series: { samples: { rawProfile: string }[] }[] };
        return wireWalk(unzip(Uint8Array.fromBase64(doc.series[0].samples[0].rawProfile)));
      },
    },
  ];
}

/**
 * Seconds per call of floor and of fn, best of ROUNDS rounds each, the rounds alternating: on a
 * shared machine both then see the same load, which keeps their ratio steady.
 */
async function timePair(floor: () => unknown, fn: () => Promise<void>): Promise<{ floor: number; sec: number }> {
  const round = async (f: () => unknown) => {
    // Garbage the other side left would otherwise be collected on this side's time.
    Bun.gc(true);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ROUND_MS) {
      await f();
      n++;
    }
    return (performance.now() - t0) / 1000 / n;
  };
  let best = { floor: Infinity, sec: Infinity };
  for (let r = 0; r < ROUNDS; r++) best = { floor: Math.min(best.floor, await round(floor)), sec: Math.min(best.sec, await round(fn)) };
  return best;
}

/** Runs fn with a sender of c's requests to a fresh app, in a data dir of its own removed afterwards. */
async function withApp<T>(c: Case, fn: (send: () => Promise<void>) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "hearth-bench-fmt-"));
  const app = await openApp(dir, "none");
  try {
    let i = 0;
    return await fn(async () => {
      const body = c.bodies[i % c.bodies.length];
      const headers: Record<string, string> = c.type ? { "content-type": c.type } : {};
      const r = await app.http.fetch(new Request(`http://bench${c.url(i++)}`, { method: "POST", headers, body }));
      if (r.status !== 200) throw new Error(`${c.name}: ${r.status} ${await r.text()}`);
    });
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function ingestFormatsBench(t: Table): Promise<void> {
  const all = await cases();
  // Warm-up of every path first: code shared by all formats (distributor, head) is otherwise
  // still cold for whichever format is measured first, and that one looks 2-3x slower.
  progress(`warming up ${all.length} formats`);
  for (const c of all)
    await withApp(c, async (send) => {
      for (const t0 = performance.now(); performance.now() - t0 < WARM_MS; ) {
        await send();
        c.floor();
      }
    });
  for (const c of all) {
    progress(`${c.name}: ${c.input}`);
    const { floor, sec } = await withApp(c, (send) => timePair(c.floor, send));
    const perSec = (s: number) => `${fmt(1 / s, 0)} bodies/s, ${fmt(c.bodies[0].length / 1e6 / s)} MB/s`;
    t.row(`ingest format: ${c.name}`, c.input, perSec(sec), `${c.floorName}: ${perSec(floor)}`, fmt(sec / floor, 1));
  }
}

if (import.meta.main) await partMain(ingestFormatsBench);
