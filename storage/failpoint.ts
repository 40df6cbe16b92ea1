// Crash points for tests: with HEARTH_FAILPOINT=<name> in the environment the process kills
// itself with SIGKILL when it reaches that point, so tests can crash it at each dangerous step
// (between a block's write and its rename, between the rename and the WAL truncation, …).

const armed = process.env.HEARTH_FAILPOINT ?? "";

export function failpoint(name: string): void {
  if (armed === name) {
    console.error(`failpoint ${name}: killing the process`);
    process.kill(process.pid, "SIGKILL");
  }
}
