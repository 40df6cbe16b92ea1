// Symbol normalization, as Pyroscope's JFR parser does it: names the JVM or a library generates
// per process (lambda classes, reflection accessors, CGLIB proxies, unpacked .so files) are
// merged into one stable name, so profiles from different runs and pods line up.

// `Foo$$Lambda$12/0x0000000800c01220`, `Foo$$Lambda$4/1283928880`, `Foo$$Lambda.0x00007ffa600c4da0`
const LAMBDA = /^(.+\$\$Lambda)(?:\$?\d*[./](?:0x)?[\da-f]+|\d+)$/;
const METHOD_ACCESSOR = /^(jdk\/internal\/reflect\/GeneratedMethodAccessor)\d+$/;
const CGLIB = /^(.+\$\$EnhancerBySpringCGLIB\$\$).*$/;
// Native libraries unpacked under /tmp with a random or versioned part in their name.
const ZSTD_JNI = /^(?:\.?\/tmp\/)?libzstd-jni-\d+\.\d+\.\d+-\d+\.so(?: \(deleted\))?$/;
const CORRETTO =
  /^(?:\.?\/tmp\/)?(?:lib)?amazonCorrettoCryptoProvider(?:NativeLibraries\.)?[0-9a-f]{16}(?:\/libcrypto|\/libamazonCorrettoCryptoProvider)?\.so(?: \(deleted\))?$/;
const ASYNC_PROFILER = /^(?:\.?\/tmp\/)?libasyncProfiler-(?:linux-arm64|linux-musl-x64|linux-x64|macos)-17b9a1d8156277a98ccc871afa9a8f69215f92\.so(?: \(deleted\))?$/;

/** The stable form of one JFR symbol (a class or method name). */
export function normalizeSymbol(s: string): string {
  // Cheap screens first: almost every symbol matches none of the patterns.
  if (s.includes("$$")) {
    // Pyroscope applies the lambda rule before the CGLIB one, so both can apply.
    let m = LAMBDA.exec(s);
    if (m) s = m[1] + "_";
    m = CGLIB.exec(s);
    return m ? m[1] + "_" : s;
  }
  if (s.includes("GeneratedMethodAccessor")) {
    const m = METHOD_ACCESSOR.exec(s);
    return m ? m[1] + "_" : s;
  }
  if (s.includes(".so")) {
    if (ZSTD_JNI.test(s)) return "libzstd-jni-_.so";
    if (CORRETTO.test(s)) return "libamazonCorrettoCryptoProvider_.so";
    if (ASYNC_PROFILER.test(s)) return "libasyncProfiler-_.so";
  }
  return s;
}
