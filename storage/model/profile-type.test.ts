import { describe, expect, test } from "bun:test";
import { parseProfileTypeId, profileTypeId } from "./profile-type.ts";

describe("parseProfileTypeId", () => {
  test("five parts", () => {
    expect(parseProfileTypeId("process_cpu:cpu:nanoseconds:cpu:nanoseconds")).toEqual({
      id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
      name: "process_cpu",
      sampleType: "cpu",
      sampleUnit: "nanoseconds",
      periodType: "cpu",
      periodUnit: "nanoseconds",
    });
  });

  test("empty period parts", () => {
    const p = parseProfileTypeId("block:contentions:count::");
    expect([p.name, p.sampleType, p.sampleUnit, p.periodType, p.periodUnit]).toEqual(["block", "contentions", "count", "", ""]);
  });

  test("a sixth part is tolerated and kept in the id", () => {
    const p = parseProfileTypeId("memory:alloc_space:bytes:space:bytes:delta");
    expect(p.id).toBe("memory:alloc_space:bytes:space:bytes:delta");
    expect(p.periodUnit).toBe("bytes");
  });

  test("other part counts throw, naming the id", () => {
    for (const bad of ["", "process_cpu", "a:b:c:d", "a:b:c:d:e:f:g"]) {
      expect(() => parseProfileTypeId(bad)).toThrow(JSON.stringify(bad));
    }
  });
});

test("profileTypeId round-trips", () => {
  const id = profileTypeId("memory", "inuse_space", "bytes", "space", "bytes");
  expect(id).toBe("memory:inuse_space:bytes:space:bytes");
  expect(parseProfileTypeId(id).sampleType).toBe("inuse_space");
  expect(profileTypeId("goroutines", "goroutine", "count", "", "")).toBe("goroutines:goroutine:count::");
});
