// The load of the soak (and of the WAL it leaves): N services, each sending every 10 s a CPU
// profile (Go cpu.pb.gz for even services, Java profile_java for odd ones), alloc + inuse (Go
// heap.pb.gz: alloc_objects, alloc_space, inuse_objects, inuse_space) and wall (nodejs-wall.pb.gz).
// Every profile has values of its own; function names are tagged per service, as 50 different
// programs would have symbols of their own. Bodies are uncompressed pprof.

import { ingest, pool, type AppLike } from "./app-client.ts";
import { loadFixture, PprofTemplate } from "./pprof-template.ts";

export const ROUND_MS = 10_000;
export const KIND = { cpu: 0, heap: 1, wall: 2 } as const;
const KINDS = [KIND.cpu, KIND.heap, KIND.wall];

/** Seed of one profile: the same (service, round, kind) always gives the same values. */
export const seedOf = (service: number, round: number, kind: number) => (round * 128 + service) * 4 + kind;

export class ServiceLoad {
  readonly go = PprofTemplate.from(loadFixture("cpu.pb.gz"), { tagServices: true, durationNanos: 10e9 });
  readonly java = PprofTemplate.from(loadFixture("profile_java"), { tagServices: true, durationNanos: 10e9 });
  readonly heap = PprofTemplate.from(loadFixture("heap.pb.gz"), { tagServices: true, durationNanos: 0 });
  readonly wall = PprofTemplate.from(loadFixture("nodejs-wall.pb.gz"), { tagServices: true, durationNanos: 10e9 });
  readonly names: string[];
  /** Uncompressed pprof bytes sent so far. */
  bytesSent = 0;
  // One values buffer per template: a body is built synchronously before the next one.
  private scratch = new Map([this.go, this.java, this.heap, this.wall].map((tp) => [tp, new Float64Array(tp.base.length)]));

  constructor(readonly services: number) {
    this.names = Array.from({ length: services }, (_, s) => `svc-${String(s).padStart(2, "0")}`);
  }

  /** Profiles sent per round. */
  get perRound(): number {
    return this.services * KINDS.length;
  }

  cpuOf(service: number): PprofTemplate {
    return service % 2 === 0 ? this.go : this.java;
  }

  template(service: number, kind: number): PprofTemplate {
    return kind === KIND.cpu ? this.cpuOf(service) : kind === KIND.heap ? this.heap : this.wall;
  }

  body(service: number, round: number, kind: number, timeMs: number): Uint8Array<ArrayBuffer> {
    const tp = this.template(service, kind);
    return tp.body(tp.values(seedOf(service, round, kind), this.scratch.get(tp)!), timeMs, service);
  }

  /**
   * Sends one round through /ingest, `concurrency` requests in flight: clients spread over 10 s
   * keep a busy server a few requests deep, not all of them at once.
   */
  async sendRound(app: AppLike, round: number, timeMs: number, concurrency: number): Promise<void> {
    await pool(this.perRound, concurrency, (j) => {
      const s = Math.floor(j / KINDS.length);
      const b = this.body(s, round, KINDS[j % KINDS.length], timeMs);
      this.bytesSent += b.length;
      return ingest(app, this.names[s], b);
    });
  }
}
