import { expect, test } from "bun:test";
import { normalizeSymbol } from "./jfr-symbols.ts";

test("per-process generated names merge into one stable name", () => {
  const cases: [string, string][] = [
    ["com/acme/Shop$$Lambda$77/0x0000000801234abc", "com/acme/Shop$$Lambda_"],
    ["com/acme/Shop$$Lambda$3/987654321", "com/acme/Shop$$Lambda_"],
    ["Calc$$Lambda.0x00007f00aa0b1c20", "Calc$$Lambda_"],
    ["com/acme/Shop$$Lambda12", "com/acme/Shop$$Lambda_"],
    ["jdk/internal/reflect/GeneratedMethodAccessor417", "jdk/internal/reflect/GeneratedMethodAccessor_"],
    ["com/acme/Repo$$EnhancerBySpringCGLIB$$9f8e7d6c", "com/acme/Repo$$EnhancerBySpringCGLIB$$_"],
    // both rules apply, lambda first
    ["com/acme/Repo$$EnhancerBySpringCGLIB$$ab$$Lambda$9/0x01", "com/acme/Repo$$EnhancerBySpringCGLIB$$_"],
    ["libzstd-jni-1.5.5-4242424242.so", "libzstd-jni-_.so"],
    ["/tmp/libzstd-jni-1.5.5-4242424242.so (deleted)", "libzstd-jni-_.so"],
    ["./tmp/libamazonCorrettoCryptoProvider0123456789abcdef.so", "libamazonCorrettoCryptoProvider_.so"],
    ["amazonCorrettoCryptoProviderNativeLibraries.fedcba9876543210/libcrypto.so (deleted)", "libamazonCorrettoCryptoProvider_.so"],
    ["libasyncProfiler-linux-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so", "libasyncProfiler-_.so"],
  ];
  for (const [input, want] of cases) expect(normalizeSymbol(input)).toBe(want);
});

test("ordinary names are left alone", () => {
  for (const s of [
    "java/util/concurrent/ThreadPoolExecutor$Worker",
    "run",
    "jdk/internal/reflect/GeneratedMethodAccessor",
    "com/acme/Shop$$Lambda",
    "com/acme/Shop$$Lambda$5", // a `$` needs the `/0x..` or `.0x..` part after it
    "libc.so.6",
    "libasyncProfiler-linux-x64-0000.so",
    "",
  ]) {
    expect(normalizeSymbol(s)).toBe(s);
  }
});
