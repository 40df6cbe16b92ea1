// SelectMergeProfile answers are real pprof: `go tool pprof` (Debian's golang-go, which .ci/run
// installs) reads each one, and its sample total and function names match the fixture.
// Without Go on the machine the test is skipped, except in CI where Go must be there.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SelectMergeProfileRequestSchema } from "../server/api/gen/querier/v1/querier_pb.ts";
import { FIXTURES, readPprof, sumColumn } from "./helpers/pprof-oracle.ts";
import { removeDir, startServer, tempDir, type RunningServer } from "./helpers/server.ts";

const go = Bun.which("go");
const mustHaveGo = process.env.CI === "true";
const CASES: [string, string, number][] = [
  ["cpu.pb.gz", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 1],
  ["heap", "memory:inuse_space:bytes:space:bytes", 3],
  ["profile_java", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 0],
  ["nodejs-wall.pb.gz", "wall:wall:microseconds:wall:microseconds", 1],
];

test("go is available where it must be", () => {
  if (mustHaveGo) expect(go, "CI must install golang-go (see .ci/run)").not.toBeNull();
  else if (!go) console.warn("go not found: skipping the `go tool pprof` checks (CI runs them)");
});

describe.skipIf(!go)("go tool pprof reads SelectMergeProfile output", () => {
  let s: RunningServer;
  let tmp: string;
  beforeAll(async () => {
    s = await startServer();
    tmp = tempDir("hearth-gopprof-");
    for (const [f] of CASES) {
      const r = await fetch(`${s.url}/ingest?format=pprof&name=gp-${f.replace(/[^a-z0-9]/gi, "-")}`, { method: "POST", body: readFileSync(FIXTURES + "pprof/" + f) });
      expect(r.status).toBe(200);
    }
  });
  afterAll(async () => {
    await s?.stop();
    removeDir(s.dataDir);
    removeDir(tmp);
  });

  for (const [f, type, idx] of CASES) {
    test(`${f} ${type}`, async () => {
      const req = create(SelectMergeProfileRequestSchema, {
        profileTypeID: type,
        labelSelector: `{service_name="gp-${f.replace(/[^a-z0-9]/gi, "-")}"}`,
        start: 1000n,
        end: BigInt(Date.now() + 3600_000),
      });
      const r = await fetch(`${s.url}/querier.v1.QuerierService/SelectMergeProfile`, {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body: toBinary(SelectMergeProfileRequestSchema, req),
      });
      expect(r.status).toBe(200);
      const file = join(tmp, `${f}.pb`);
      writeFileSync(file, new Uint8Array(await r.arrayBuffer()));
      const out = Bun.spawnSync([go!, "tool", "pprof", "-raw", file], { env: { ...process.env, HOME: tmp, GOCACHE: join(tmp, "gocache") }, stdout: "pipe", stderr: "pipe" });
      expect(out.exitCode, out.stderr.toString()).toBe(0);
      const text = out.stdout.toString();
      // Sample lines look like "   160000000: 1 2 3": one value (one sample type), then location ids.
      const samples = text.split("Samples:")[1].split("Locations")[0];
      let total = 0;
      for (const m of samples.matchAll(/^\s+(-?\d+):/gm)) total += Number(m[1]);
      const fixture = readPprof(FIXTURES + "pprof/" + f);
      expect(total).toBe(sumColumn(fixture, idx));
      // Every function name of the fixture's non-zero samples appears among go's locations.
      const names = new Set<string>();
      const fnById = new Map(fixture.function.map((fn) => [fn.id, fixture.stringTable[Number(fn.name)]]));
      const locById = new Map(fixture.location.map((l) => [l.id, l]));
      for (const smp of fixture.sample)
        if (Number(smp.value[idx]) !== 0) for (const id of smp.locationId) for (const line of locById.get(id)!.line) names.add(fnById.get(line.functionId)!);
      const locations = text.split("Locations")[1];
      for (const n of names) expect(locations, n).toContain(n);
    });
  }
});
