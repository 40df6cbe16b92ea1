import { expect, test } from "bun:test";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ApiError } from "../../errors.ts";
import { FIXTURES } from "../../../test/helpers/pprof-oracle.ts";
import { decodeLabelsSnapshot } from "./labels-snapshot.ts";

// Encoded with protobuf-es' writer, independently of the hand-written reader under test.
function encode(contexts: [number, [number, number][]][], strings: [number, string][], extra?: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter();
  for (const [id, labels] of contexts) {
    const ctx = new BinaryWriter();
    for (const [k, v] of labels) ctx.uint32(10).fork().uint32(8).int64(k).uint32(16).int64(v).join();
    w.uint32(10).fork().uint32(8).int64(id).uint32(18).bytes(ctx.finish()).join();
  }
  for (const [id, s] of strings) w.uint32(18).fork().uint32(8).int64(id).uint32(18).string(s).join();
  extra?.(w);
  return w.finish();
}

test("contexts map label-name ids to label-value ids; strings resolve them", () => {
  const b = encode(
    [
      [7, [[1, 2]]],
      [-3, [[1, 4], [5, 6], [1, 9]]], // a repeated key replaces the earlier value
    ],
    [
      [1, "thread_name"],
      [2, "worker-1"],
      [9, "wörker-2"],
    ],
    (w) => w.uint32(26).string("unknown field 3 is skipped").uint32(41).fixed64(1n),
  );
  const s = decodeLabelsSnapshot(b);
  expect(s.contexts.get(7)).toEqual([1, 2]);
  expect(s.contexts.get(-3)).toEqual([1, 9, 5, 6]);
  expect(s.strings.get(9)).toBe("wörker-2");
  expect(s.strings.size).toBe(3);
});

test("the fixtures' snapshots carry thread names", () => {
  const s = decodeLabelsSnapshot(gunzipSync(readFileSync(`${FIXTURES}jfr/dump1.labels.pb.gz`)));
  const names = new Set<string>();
  for (const kv of s.contexts.values()) for (let i = 0; i < kv.length; i += 2) names.add(`${s.strings.get(kv[i])}=${s.strings.get(kv[i + 1])}`);
  expect([...names].sort()).toEqual(["thread_name=pool-2-thread-1", "thread_name=pool-2-thread-3", "thread_name=pool-2-thread-5", "thread_name=pool-2-thread-7"]);
});

test("malformed protobuf is a 422 naming the problem", () => {
  const good = encode([[1, [[1, 2]]]], [[1, "a"]]);
  for (const bad of [good.subarray(0, good.length - 1), new Uint8Array([10, 50, 8]), new Uint8Array([0x0f]), new Uint8Array([8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]) {
    let err: unknown;
    try {
      decodeLabelsSnapshot(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("unprocessable");
    expect((err as ApiError).message).toMatch(/^labels: invalid LabelsSnapshot protobuf: /);
  }
});
