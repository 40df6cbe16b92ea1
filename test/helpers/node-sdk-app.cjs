// A small Node program profiled by the official Pyroscope Node SDK, for test/e2e-node-sdk.test.ts.
// It must run under Node (under Bun the SDK's wall profile is empty). It burns CPU in two named
// functions (one wrapped with a label), retains some heap, then stop()s, which flushes.
//
// Env: HEARTH_URL (required), APP_NAME (required), DURATION_MS (burn time, default 4000),
// FLUSH_MS (default 1500). stdout: one JSON line per SDK upload ({kind:"upload", url, status,
// contentType, body: base64}) and a final {kind:"done", profiledMs, retainedBytes}.

"use strict";

const serverAddress = process.env.HEARTH_URL;
const appName = process.env.APP_NAME;
if (!serverAddress || !appName) {
  process.stderr.write("node-sdk-app: HEARTH_URL and APP_NAME are required\n");
  process.exit(2);
}
const durationMs = Number(process.env.DURATION_MS ?? 4000);
const flushMs = Number(process.env.FLUSH_MS ?? 1500);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// The SDK swallows upload failures (it only logs them through `debug`), so record every request
// it makes and the server's answer; the test checks both.
const realFetch = globalThis.fetch;
const pending = [];
globalThis.fetch = async (url, init = {}) => {
  const body = init.body ? Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength).toString("base64") : "";
  const headers = new Headers(init.headers);
  const record = { kind: "upload", url: String(url), method: init.method, contentType: headers.get("content-type"), body, status: 0, answer: "" };
  const p = realFetch(url, init).then(
    async (r) => {
      record.status = r.status;
      record.answer = await r.clone().text();
      emit(record);
      return r;
    },
    (e) => {
      record.answer = String(e);
      emit(record);
      throw e;
    },
  );
  pending.push(p.catch(() => {}));
  return p;
};

// CJS: only init/start/stop/wrapWithLabels are named exports; the rest live on `.default`.
const Pyroscope = require("@pyroscope/nodejs");
const sdk = Pyroscope.default ?? Pyroscope;

sdk.init({
  serverAddress,
  appName,
  tags: { region: "eu-1" },
  flushIntervalMs: flushMs,
  wall: { samplingDurationMs: flushMs },
  heap: { samplingIntervalBytes: 32 * 1024 },
});

// Distinct bodies keep V8 from folding the two into one and make each show up under its own name.
function burnHot(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) for (let i = 0; i < 20000; i++) x += Math.sqrt(i * 1.0001 + x) % 7;
  return x;
}

function burnCold(ms) {
  const end = Date.now() + ms;
  let s = "";
  while (Date.now() < end) for (let i = 0; i < 2000; i++) s = (s + String.fromCharCode(97 + (i % 26))).slice(-64);
  return s.length;
}

// Kept reachable until exit so it is in use when the heap profile is taken.
const retained = [];
function allocRetained(arrays, length) {
  for (let a = 0; a < arrays; a++) {
    const arr = new Array(length);
    for (let i = 0; i < length; i++) arr[i] = { i, v: i * 0.5 };
    retained.push(arr);
  }
}

async function main() {
  const t0 = Date.now();
  sdk.start(); // wall + heap
  // ~20k objects × 32 arrays: tens of MB, far above the Node baseline heap.
  allocRetained(32, 20000);
  const end = t0 + durationMs;
  let sink = 0;
  while (Date.now() < end) {
    sdk.wrapWithLabels({ handler: "hot" }, () => {
      sink += burnHot(30);
    });
    sink += burnCold(10);
    // Yield so the SDK's flush timers and uploads can run.
    await new Promise((r) => setImmediate(r));
  }
  await sdk.stop();
  await Promise.all(pending);
  emit({ kind: "done", profiledMs: Date.now() - t0, retainedArrays: retained.length, sink: sink > 0 });
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`node-sdk-app: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
