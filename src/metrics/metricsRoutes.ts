import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { GatewayMetrics } from "./gatewayMetrics.ts";
import type { createAuthorize } from "../pipeline/authorize.ts";

export interface MetricsRoutesOptions {
  metrics: GatewayMetrics;
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  authorize: Pick<ReturnType<typeof createAuthorize>, "selectBound" | "precheck" | "decide">;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);
// A request relayed by a proxy on this host arrives from loopback too: any forwarding header makes it a remote caller.
const FORWARDED = ["forwarded", "x-forwarded-for", "x-real-ip"];

/** A scraper on this host, talking to the gateway directly. */
export function isDirectLoopback(request: FastifyRequest): boolean {
  return LOOPBACK.has(request.socket.remoteAddress ?? "") && FORWARDED.every((h) => request.headers[h] === undefined);
}

/**
 * `GET /metrics` on the gateway port: a direct loopback caller needs no credentials; anyone else is
 * authenticated and authorized by the active policy like any request (endpoint `gateway.metrics`).
 */
export async function metricsRoutes(app: FastifyInstance, options: MetricsRoutesOptions): Promise<void> {
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    if (isDirectLoopback(request)) return;
    request.gerbang.gatewayRoute = "admin";
    await options.authenticate(request, reply);
    options.authorize.selectBound(request, "gateway.metrics");
    options.authorize.precheck(request);
  });
  app.addHook("preHandler", async (request) => {
    if (request.gerbang.gatewayRoute === "admin") await options.authorize.decide(request);
  });
  app.get("/metrics", async (_request, reply) => reply.header("content-type", options.metrics.registry.contentType).send(await options.metrics.registry.metrics()));
}

/** `metrics.port`: the same series on a listener of their own, nothing else on it. */
export async function startMetricsListener(metrics: GatewayMetrics, host: string, port: number): Promise<{ close(): Promise<void> }> {
  const { default: Fastify } = await import("fastify");
  const app = Fastify({ logger: false });
  app.get("/metrics", async (_request, reply) => reply.header("content-type", metrics.registry.contentType).header("cache-control", "no-store").send(await metrics.registry.metrics()));
  await app.listen({ host, port });
  return { close: () => app.close() };
}
