// The optional h2c listener (server.grpc_port) for native gRPC clients such as Grafana Alloy and
// OpenTelemetry collectors. Bun.serve speaks HTTP/1.1 only and a fetch Response cannot carry
// trailers, so gRPC gets its own node:http2 cleartext server running the same Connect handlers
// as the main port (which also answer Connect and gRPC-web here).

import * as http2 from "node:http2";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";

// The Connect handlers built by createHttpApp, keyed by its app: main.ts only sees the app.
const shared = new WeakMap<object, UniversalHandler[]>();

/** Makes `handlers` available to a gRPC listener started for `app`. */
export function shareHandlersWithGrpc(app: object, handlers: UniversalHandler[]): void {
  shared.set(app, handlers);
}

export function grpcHandlersOf(app: object): UniversalHandler[] {
  const hs = shared.get(app);
  if (!hs) throw new Error("the HTTP app shared no Connect handlers for the gRPC listener");
  return hs;
}

export interface GrpcListener {
  port: number;
  /** Stops accepting, lets running calls finish, closes every connection. */
  close(): Promise<void>;
}

export function startGrpcListener(opts: { host: string; port: number; handlers: UniversalHandler[]; log?: (msg: string) => void }): Promise<GrpcListener> {
  const log = opts.log ?? console.log;
  const byPath = new Map(opts.handlers.map((h) => [h.requestPath, h]));
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer({}, (req, res) => {
    const h = byPath.get((req.url ?? "").split("?", 1)[0]);
    if (!h) {
      // gRPC clients read the status from headers/trailers, not the HTTP status.
      res.writeHead(200, { "content-type": "application/grpc", "grpc-status": "12", "grpc-message": `unknown method ${req.url}` });
      res.end();
      return;
    }
    h(universalRequestFromNodeRequest(req, res, undefined, undefined))
      .then((ures) => universalResponseToNodeResponse(ures, res))
      .catch((e) => log(`grpc: ${h.service.typeName}/${h.method.name} failed: ${e instanceof Error ? e.message : e}`));
  });
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve({
        port: typeof addr === "object" && addr ? addr.port : opts.port,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            for (const s of sessions) s.close();
          }),
      });
    });
  });
}
