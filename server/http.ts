// The Hono app: Connect services (Connect JSON/binary and gRPC-web) and the plain HTTP routes.
// Handlers here are thin: tenant → role call → encode; errors go through errors.ts.

import { createConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { Hono, type Context } from "hono";
import { PusherService } from "./api/gen/push/v1/push_pb.ts";
import { QuerierService } from "./api/gen/querier/v1/querier_pb.ts";
import { ProfilesService } from "./api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import { compressionGzip } from "@connectrpc/connect-node";
import { handleOtlpHttp, otlpProfilesService } from "./api/otlp.ts";
import { shareHandlersWithGrpc } from "./grpc-listener.ts";
import { handleIngest } from "./api/ingest.ts";
import { handleLabelValues, handleRender } from "./api/render.ts";
import type { Compactor } from "./compactor.ts";
import type { Config } from "./config.ts";
import type { DistributorRole } from "./distributor.ts";
import { ApiError, badRequest, errorResponse, errorStatus, toConnectError } from "./errors.ts";
import { parseSelector, type Matcher } from "../storage/model/selector.ts";
import type { Ingester } from "./ingester.ts";
import type { Metrics } from "./metrics.ts";
import type { Querier } from "./querier.ts";
import { tenantOf, tenantsOf } from "./tenant.ts";

export interface HttpDeps {
  config: Config;
  distributor: DistributorRole;
  ingester: Ingester;
  querier: Querier;
  compactor: Compactor;
  metrics: Metrics;
  isReady: () => boolean;
  version: { version: string; revision: string; branch: string };
  /**
   * Called once a query has answered (the heap governor looks at the heap then): a query over
   * many blocks leaves tens of MB of decoded pages and symbols behind.
   */
  afterQuery?: () => void;
}

export function createHttpApp(deps: HttpDeps): Hono {
  const { config, distributor, ingester, querier, metrics } = deps;
  const mt = config.multitenancy;
  const app = new Hono();

  // Wraps a query RPC: tenant from headers, errors to Connect codes, duration to metrics.
  function query<Req, Res>(method: string, fn: (tenants: string[], req: Req) => Res | Promise<Res>) {
    return async (req: Req, ctx: HandlerContext): Promise<Res> => {
      const t0 = performance.now();
      try {
        return await fn(tenantsOf(ctx.requestHeader, mt), req);
      } catch (e) {
        throw toConnectError(e);
      } finally {
        metrics.queryDuration.observe({ method }, (performance.now() - t0) / 1000);
        // After the answer is on its way, not before it: a forced collection takes tens of ms.
        if (deps.afterQuery) setTimeout(deps.afterQuery, 0);
      }
    };
  }
  const unimplemented = (name: string) => async () => {
    throw toConnectError(new ApiError("unimplemented", `${name} is not implemented yet`));
  };

  const router = createConnectRouter({
    readMaxBytes: config.limits.ingestionBodyLimitBytes || 0x7fffffff,
    jsonOptions: { ignoreUnknownFields: true },
    // OTel collectors send gzip-compressed gRPC by default; responses stay uncompressed as before.
    acceptCompression: [compressionGzip],
    compressMinBytes: Number.MAX_SAFE_INTEGER,
  });
  router.service(PusherService, {
    async push(req, ctx) {
      let tenant = "unknown";
      try {
        tenant = tenantOf(ctx.requestHeader, mt);
        await distributor.push(tenant, req);
        metrics.ingestRequests.inc({ tenant, route: "push", outcome: "ok" });
        metrics.ingestProfiles.inc({ tenant, outcome: "ok" }, req.series.reduce((n, s) => n + s.samples.length, 0));
        return {};
      } catch (e) {
        metrics.ingestRequests.inc({ tenant, route: "push", outcome: String(errorStatus(e)) });
        throw toConnectError(e);
      }
    },
  });
  router.service(QuerierService, {
    profileTypes: query("ProfileTypes", querier.profileTypes),
    labelNames: query("LabelNames", querier.labelNames),
    labelValues: query("LabelValues", querier.labelValues),
    series: query("Series", querier.series),
    selectMergeStacktraces: query("SelectMergeStacktraces", querier.selectMergeStacktraces),
    selectMergeProfile: query("SelectMergeProfile", querier.selectMergeProfile),
    selectSeries: query("SelectSeries", querier.selectSeries),
    selectMergeSpanProfile: query("SelectMergeSpanProfile", querier.selectMergeSpanProfile),
    diff: unimplemented("Diff"),
    getProfileStats: unimplemented("GetProfileStats"),
    analyzeQuery: unimplemented("AnalyzeQuery"),
  });
  const otlpDeps = { distributor, limits: config.limits, limitsFor: (t: string) => ({ ...config.limits, ...distributor.limitsFor(t) }), multitenancy: mt, metrics };
  router.service(ProfilesService, otlpProfilesService(otlpDeps));
  shareHandlersWithGrpc(app, router.handlers); // served again by the h2c listener (server.grpc_port)
  const known = new Set(["/ingest", "/pyroscope/ingest", "/pyroscope/render", "/pyroscope/label-values", "/ready", "/metrics", "/ingester/flush", "/api/admin/delete-series"]);
  for (const h of router.handlers) {
    known.add(h.requestPath);
    const fh = createFetchHandler(h, { httpVersion: "1.1" });
    app.on(h.allowedMethods, h.requestPath, (c) => fh(c.req.raw));
  }

  const ingest = async (c: Context) => {
    let tenant = "unknown";
    const bytes = Number(c.req.header("content-length") ?? 0) || 0;
    try {
      tenant = tenantOf(c.req.raw.headers, mt);
      await handleIngest(c.req.raw, tenant, distributor, config.limits);
      metrics.ingestRequests.inc({ tenant, route: "ingest", outcome: "ok" });
      metrics.ingestBytes.inc({ tenant, outcome: "ok" }, bytes);
      metrics.ingestProfiles.inc({ tenant, outcome: "ok" });
      return c.body(null, 200);
    } catch (e) {
      const status = String(errorStatus(e));
      metrics.ingestRequests.inc({ tenant, route: "ingest", outcome: status });
      metrics.ingestBytes.inc({ tenant, outcome: status }, bytes);
      return errorResponse(e);
    }
  };
  app.post("/ingest", ingest);
  app.post("/pyroscope/ingest", ingest);
  known.add("/v1development/profiles");
  app.post("/v1development/profiles", (c) => handleOtlpHttp(c.req.raw, otlpDeps));

  app.get("/pyroscope/render", async (c) => {
    try {
      return c.json(await handleRender(new URL(c.req.url), tenantsOf(c.req.raw.headers, mt), querier));
    } catch (e) {
      return errorResponse(e);
    } finally {
      if (deps.afterQuery) setTimeout(deps.afterQuery, 0);
    }
  });
  app.get("/pyroscope/label-values", async (c) => {
    try {
      return c.json(await handleLabelValues(new URL(c.req.url), tenantsOf(c.req.raw.headers, mt), querier));
    } catch (e) {
      return errorResponse(e);
    }
  });

  // Deletes series (e.g. an app that is gone) from the head and every block of the tenant.
  app.post("/api/admin/delete-series", async (c) => {
    try {
      const tenant = tenantOf(c.req.raw.headers, mt);
      const selectors = new URL(c.req.url).searchParams.getAll("match[]");
      if (selectors.length !== 1) throw badRequest('give exactly one match[] selector, e.g. match[]={service_name="old-app"}');
      let matchers: Matcher[];
      try {
        matchers = parseSelector(selectors[0]);
      } catch (e) {
        throw badRequest(`invalid selector ${JSON.stringify(selectors[0])}: ${e instanceof Error ? e.message : e}`);
      }
      if (matchers.length === 0) throw badRequest("the selector matches every series; name at least one label (retention deletes by age)");
      return c.json(await deps.compactor.deleteSeries(tenant, matchers));
    } catch (e) {
      return errorResponse(e);
    }
  });

  app.post("/ingester/flush", async (c) => {
    await ingester.flush();
    return c.text("flushed\n");
  });
  app.get("/ready", (c) => (deps.isReady() ? c.text("ready\n") : c.text("Ingester not ready: replaying the WAL\n", 503)));
  app.get("/metrics", (c) => c.body(metrics.registry.render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));
  app.get("/api/v1/status/buildinfo", (c) =>
    c.json({ status: "success", data: { version: deps.version.version, revision: deps.version.revision, branch: deps.version.branch, goVersion: `bun ${Bun.version}` } }),
  );
  const indexHtml = Bun.file(new URL("../web/index.html", import.meta.url).pathname);
  app.get("/", async (c) => c.html(await indexHtml.text()));
  // Known paths with the wrong method answer 405, as Pyroscope's router does.
  app.all("*", (c) => {
    if (known.has(c.req.path)) return errorResponse(new ApiError("method_not_allowed", `method ${c.req.method} is not allowed on ${c.req.path}`));
    return errorResponse(new ApiError("not_found", `no route for ${c.req.method} ${c.req.path}`));
  });
  return app;
}
