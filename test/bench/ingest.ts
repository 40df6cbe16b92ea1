// Ingest: each pprof fixture through the real HTTP app (decode, labels, WAL, head), with and without
// fsync, against the floor of gunzip + a bare protobuf wire walk of the same bytes.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { App } from "../../server/app.ts";
import { decodePprof } from "../../server/ingest/pprof-decoder.ts";
import { ingest, openApp } from "./app-client.ts";
import { partMain } from "./child.ts";
import { FIXTURES, unzip } from "./pprof-template.ts";
import { fmt, timeIt, type Table } from "./table.ts";
import { wireWalk } from "./wire-walk.ts";

const INGEST_FIXTURES = ["cpu.pb.gz", "go.cpu.labels.pprof", "heap", "profile_java", "nodejs-wall.pb.gz", "dotnet-pprof-73.pb.gz", "profile_ruby"];

export async function ingestBench(t: Table): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hearth-bench-"));
  const noSyncDir = mkdtempSync(join(tmpdir(), "hearth-bench-nosync-"));
  const app = await openApp(dataDir, "always");
  const noSyncApp = await openApp(noSyncDir, "none");
  try {
    for (const f of INGEST_FIXTURES) {
      const body = new Uint8Array(readFileSync(FIXTURES + f));
      const raw = unzip(body);
      const floor = await timeIt(() => wireWalk(unzip(body)));
      const decode = await timeIt(() => decodePprof(unzip(body)));
      let i = 0;
      // Timestamps come from the fixture (often years old): the bench config accepts them.
      const ingestInto = (a: App) => () => ingest(a, `bench-${i++ % 50}{fixture=${f}}`, body);
      const synced = await timeIt(ingestInto(app));
      const noSync = await timeIt(ingestInto(noSyncApp));
      const mbs = raw.length / 1e6;
      t.row("decode pprof (gunzip + decode)", `${f} ${fmt(raw.length / 1024)} KiB`, `${fmt(mbs / decode)} MB/s`, `${fmt(mbs / floor)} MB/s gunzip + wire walk`, fmt(decode / floor, 2));
      t.row("  /ingest, WAL without fsync", "", `${fmt(mbs / noSync)} MB/s, ${fmt(1 / noSync, 0)} profiles/s`, "", fmt(noSync / floor, 2));
      t.row("  /ingest, WAL with fsync (default)", "", `${fmt(mbs / synced)} MB/s, ${fmt(1 / synced, 0)} profiles/s`, "", fmt(synced / floor, 2));
    }
  } finally {
    await app.close();
    await noSyncApp.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(noSyncDir, { recursive: true, force: true });
  }
}

if (import.meta.main) await partMain(ingestBench);
