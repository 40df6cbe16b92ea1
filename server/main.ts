// Entry point: config → listen at once (so /ready can say 503 during WAL replay) → createApp →
// serve. SIGTERM/SIGINT stop accepting, flush and close; a second signal exits at once.

import { createApp, type App } from "./app.ts";
import { ConfigError, HelpRequested, loadConfig } from "./config.ts";
import { grpcHandlersOf, startGrpcListener, type GrpcListener } from "./grpc-listener.ts";

let config;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (e) {
  if (e instanceof HelpRequested) {
    console.log(e.usage);
    process.exit(0);
  }
  if (e instanceof ConfigError) {
    console.error(`hearth: ${e.message}`);
    process.exit(2);
  }
  throw e;
}

let app: App | null = null;
const notReady = (req: Request): Response => {
  const path = new URL(req.url).pathname;
  if (path === "/ready") return new Response("Ingester not ready: replaying the WAL\n", { status: 503 });
  return Response.json({ code: "unavailable", message: "Hearth is starting: replaying the write-ahead log" }, { status: 503 });
};

const server = Bun.serve({
  hostname: config.server.host,
  port: config.server.port,
  maxRequestBodySize: Math.max(config.limits.ingestionBodyLimitBytes, 1 << 20) + (1 << 20),
  idleTimeout: 120,
  fetch: (req) => (app ? app.http.fetch(req) : notReady(req)),
});
console.log(`hearth: listening on http://${server.hostname}:${server.port}, data in ${config.dataDir}`);

app = await createApp(config);
console.log(
  `hearth: ready (replayed ${app.replay.records} WAL records, ${(app.replay.bytes / 1e6).toFixed(1)} MB from ${app.replay.tenants} tenants in ${app.replay.ms.toFixed(0)} ms)`,
);

// Native gRPC (push.v1, OTLP ProfilesService, …) on its own h2c port, when configured.
let grpc: GrpcListener | null = null;
if (config.server.grpcPort) {
  grpc = await startGrpcListener({ host: config.server.host, port: config.server.grpcPort, handlers: grpcHandlersOf(app.http) });
  console.log(`hearth: gRPC (h2c) listening on ${config.server.host}:${grpc.port}`);
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) {
    console.log(`hearth: second ${signal}, exiting now`);
    process.exit(1);
  }
  stopping = true;
  console.log(`hearth: ${signal}: stopping, flushing and closing`);
  await server.stop();
  await grpc?.close();
  await app?.close();
  console.log("hearth: closed cleanly");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
