import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import { Agent } from "undici";
import { requestId } from "./pipeline/requestId.ts";
import type { Socket } from "node:net";
import { Readable, type Duplex } from "node:stream";
import { STATUS_CODES } from "node:http";
import { ERRORS, GerbangError, errorBody } from "./errors/catalogue.ts";
import type { GerbangConfig } from "./config/schema.ts";
import type { Auth } from "./auth/createAuth.ts";
import type { SessionResolver } from "./auth/sessionResolver.ts";
import type { Authenticator } from "./auth/authenticators/authenticator.ts";
import { authRoutes } from "./auth/authRoutes.ts";
import type { PolicyStore } from "./policy/policyStore.ts";
import type { AttributeResolver } from "./resolvers/attributeResolver.ts";
import type { AssertionSigner } from "./identity/assertionSigner.ts";
import type { AuditWriter } from "./audit/auditWriter.ts";
import { UpstreamTable } from "./pipeline/routeUpstream.ts";
import { createNormalizer, rejectedTargetReason, splitTarget } from "./pipeline/normalize.ts";
import { createAuthenticate } from "./pipeline/authenticate.ts";
import { createAuthorize, createInvalidateAfterWrite } from "./pipeline/authorize.ts";
import { createForward, isUpstreamBodyError } from "./pipeline/forward.ts";
import { bodyIsRead, declaredLength, readWholeBody } from "./pipeline/requestBody.ts";
import { sendError } from "./pipeline/sendError.ts";
import { recordDecision } from "./audit/recordDecision.ts";
import { auditRoutes } from "./audit/auditRoutes.ts";
import { RequestTracing } from "./tracing/requestTracing.ts";
import type { Tracer } from "@opentelemetry/api";
import type { PrismaClient } from "./generated/prisma/client.ts";
import { systemRoutes, type ReadinessCheck } from "./systemRoutes.ts";
import { keyRoutes } from "./keys/keyRoutes.ts";
import type { ApiKeyService } from "./keys/apiKeyService.ts";
import { accountRoutes } from "./account/accountRoutes.ts";
import { phoneRoutes } from "./auth/phoneRoutes.ts";
import { keyInQuery } from "./keys/keyInQuery.ts";
import { hasMethodOverride, methodOverrideRefused } from "./pipeline/methodOverride.ts";
import { validHost } from "./pipeline/validHost.ts";
import { hasObfuscatedFramingHeader } from "./pipeline/framingHeaders.ts";
import { createRateLimitStage } from "./pipeline/rateLimit.ts";
import { LoadShedding } from "./pipeline/loadShedding.ts";
import { UpstreamCircuits } from "./forward/upstreamCircuits.ts";
import { createRateLimiter } from "./ratelimit/rateLimiter.ts";
import type { RateLimitCounters } from "./ratelimit/rateLimitCounters.ts";
import { bufferedLogDestination } from "./runtime/bufferedLogDestination.ts";
import "./pipeline/requestState.ts";
import { adminRoutes } from "./admin/adminRoutes.ts";
import { GatewayMetrics } from "./metrics/gatewayMetrics.ts";
import { metricsRoutes } from "./metrics/metricsRoutes.ts";
import type { OperatorServices } from "./admin/operations.ts";
import fastifyWebsocket from "@fastify/websocket";
import type { IncomingMessage, ServerOptions } from "node:http";
import { ANONYMOUS, type Principal } from "./auth/principal.ts";
import type { Invalidation } from "./keys/invalidationBus.ts";
import { LiveConnections, type Concerned, type LiveConnection } from "./live/liveConnections.ts";
import { createWebsocketStage } from "./live/websocketStage.ts";
import { handshakeRefusal, isWebsocketUpgrade } from "./live/websocketHandshake.ts";

/** Everything buildApp needs, built by server.ts (or a test) from real services. */
export interface GatewayContext {
  config: GerbangConfig;
  publicUrl: string;
  upstreams: GerbangConfig["upstreams"] & object;
  auth: Auth;
  sessions: SessionResolver;
  authenticators: readonly Authenticator[];
  policies: PolicyStore;
  resolver: AttributeResolver;
  signer: AssertionSigner;
  audit: AuditWriter | null;
  /** Cache counters the metrics read (the key store and resolver are built beside the app). */
  keyStats?: { hits: number; misses: number };
  resolverStats?: { hits: number; misses: number };
  /** Activation outcomes on this instance, by outcome. */
  activationOutcomes?: () => Readonly<Record<string, number>>;
  /** The OTLP tracer when tracing.otlpUrl is set. */
  tracer?: Tracer;
  /** Where GET /api/audit/events reads; absent leaves the route out. */
  auditStore?: PrismaClient;
  /** Key lifecycle endpoints at /api/keys; null leaves them out. */
  keys: { service: ApiKeyService; selfServiceTier: string } | null;
  /** An admin changed a user through /api/auth/admin/*: caches everywhere must forget them. */
  onUserChanged?: (userId: string | null) => void;
  /** The operations the admin API carries out; null until the gateway has started. */
  adminServices?: () => OperatorServices | null;
  /** Shared rate-limit counters (Redis, counted locally between round trips). */
  rateLimitCounters: RateLimitCounters;
  readiness: readonly ReadinessCheck[];
  logger?: FastifyServerOptions["logger"];
  /** Where revocations are heard (the invalidation bus): open WebSockets and streams are authorized again. */
  revocations?: { onInvalidate(handler: (message: Invalidation) => void): void };
}

const PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

const metricsByApp = new WeakMap<FastifyInstance, GatewayMetrics | null>();
/** The metrics of an app buildApp made (startGateway serves them on metrics.port too). */
export const metricsOf = (app: FastifyInstance): GatewayMetrics | null => metricsByApp.get(app) ?? null;

/** A readiness check's outcome for a scrape: passing within the deadline. */
async function withDeadline(check: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([check.then(() => true, () => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** One request in the metrics; labels are bounded (endpoint ids or registered route patterns, never raw paths). */
function observe(metrics: GatewayMetrics, request: FastifyRequest, status: number, seconds: number): void {
  const state = request.gerbang;
  const route = request.routeOptions.url;
  const endpoint = state.endpoint?.endpoint.spec.id ?? (route === undefined ? "unmatched" : route === "/*" ? "unmapped" : route);
  const decision = state.decision === undefined ? "none" : state.decision.allowed ? "allow" : "deny";
  const reason = state.decision?.reason ?? state.errorReason ?? state.errorCode ?? "none";
  const upstream = state.upstream !== undefined && state.upstreamSeconds !== undefined ? { name: state.upstream.name, seconds: state.upstreamSeconds } : null;
  metrics.observe(endpoint, decision, reason, status, seconds, upstream);
}

/** Credentials are redacted in any log line that carries headers, and so is every header the config names. */
const ALWAYS_REDACTED = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "set-auth-token", "x-gerbang-assertion"];
export const redactedHeaderPaths = (extra: readonly string[]): string[] =>
  [...new Set([...ALWAYS_REDACTED, ...extra])].flatMap((name) =>
    ["req.headers", "res.headers", "requestHeaders", "responseHeaders"].map((at) => `${at}[${JSON.stringify(name)}]`),
  );

/** The gateway as a Fastify instance, not listening: tests inject into it, server.ts listens. */
export async function buildApp(ctx: GatewayContext): Promise<FastifyInstance> {
  const { config } = ctx;
  let metrics: GatewayMetrics | null = null;
  const logDestination = ctx.logger === undefined ? bufferedLogDestination(config.logFlushMs) : null;
  const http: ServerOptions & { shouldUpgradeCallback?: (request: IncomingMessage) => boolean } = {
    maxHeaderSize: config.server.maxHeaderBytes,
    requireHostHeader: false,
    // Slow clients (slowloris, a trickled body) are answered 408 and closed; checked every second.
    headersTimeout: config.server.headersTimeoutMs,
    requestTimeout: config.server.requestTimeoutMs,
    connectionsCheckingInterval: 1000,
    // Node 24: only a WebSocket GET is an upgrade; any other Upgrade (h2c) is an ordinary request whose
    // Upgrade header is stripped. Without this option (Node 22) the onRequest hook refuses those.
    shouldUpgradeCallback: (request) => request.method === "GET" && isWebsocketUpgrade(request.headers.upgrade),
  };
  const app = Fastify({
    logger: ctx.logger ?? {
      level: config.logLevel,
      redact: { paths: redactedHeaderPaths(config.logRedactHeaders), censor: "[redacted]" },
      ...(logDestination === null ? {} : { stream: logDestination.stream }),
    },
    bodyLimit: config.server.bodyLimitBytes,
    // Node answers a missing Host with a bare 400 of its own; the onRequest hook answers it in the catalogue's JSON.
    http,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    requestIdHeader: false,
    genReqId: () => requestId(),
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.server.trustProxy.length > 0 ? config.server.trustProxy : false,
    return503OnClosing: false,
    rewriteUrl: createNormalizer(config.policy.caseInsensitivePaths),
    clientErrorHandler: clientError,
  });
  const trustedOrigins = new Set([new URL(ctx.publicUrl).origin, ...config.auth.trustedOrigins]);
  // Without a configured publicUrl, localhost and 127.0.0.1 are the same local gateway.
  if (config.server.publicUrl === undefined) trustedOrigins.add(ctx.publicUrl.replace("//localhost:", "//127.0.0.1:"));
  app.server.maxHeadersCount = 0;
  // Before every hook: an upgrade is routed through Fastify like any request (its hooks, its errors over
  // HTTP) and upgraded only by the proxy route's handler, after the upstream accepted (live/websocketStage).
  let websocket: ReturnType<typeof createWebsocketStage> | null = null;
  let closing = false;
  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.websocket.maxMessageBytes, perMessageDeflate: false, handleProtocols: (_offered, request) => websocket?.protocolFor(request) ?? false },
    errorHandler: (_error, socket) => socket.terminate(),
    // The first preClose hook (the plugin is registered first): from here on every request is refused
    // (checkRequest), no handshake is completed, and every open WebSocket is told.
    preClose: (done) => {
      closing = true;
      live.closeAll("gateway shutting down");
      done();
    },
  });
  app.websocketServer.on("headers", (headers: string[], request: IncomingMessage) => websocket?.headersFor(headers, request));
  const upstreams = new UpstreamTable(ctx.upstreams);
  const circuits = new UpstreamCircuits(upstreams.all, (upstream, state, detail) => {
    app.log.warn({ upstream, state, failures: detail.failures, openMs: state === "open" ? detail.openMs : undefined }, `upstream circuit ${state}`);
  });
  const shedding = new LoadShedding(config.server, (socket) => writeRawError(socket, "OVERLOADED", { reason: "CONNECTIONS", extraHeaders: `Retry-After: ${config.server.overload.retryAfterSec}\r\n` }));
  // CONNECT never reaches Fastify's router; without a listener Node would drop the socket silently.
  app.server.on("connect", (_req, socket: Duplex) => {
    writeRawError(socket, "METHOD_NOT_ALLOWED");
    socket.end();
  });

  // Node answers `Expect: 100-continue` itself, before any hook: the client would send a body the
  // gateway may refuse. Route it as a plain request instead; preParsing sends 100 once the request
  // got past authentication and the precheck, right before the body is read.
  app.server.on("checkContinue", (req, res) => app.server.emit("request", req, res));
  app.addHook("preParsing", (request, reply, payload, done) => {
    try {
      // A streamed body is charged part by part as it goes (forward); one read whole, all at once here.
      const body = request.gerbang.body;
      if (body?.read !== false) shedding.reserveBody(request, reply, body?.limit ?? config.server.bodyLimitBytes);
    } catch (error) {
      done(error as GerbangError);
      return;
    }
    if (String(request.headers.expect ?? "").toLowerCase() === "100-continue" && !reply.raw.headersSent) reply.raw.writeContinue();
    done(null, payload);
  });
  app.decorateRequest("gerbang", null as never);
  const tracing = new RequestTracing({ trustFrom: config.tracing.trustIncomingFrom, ...(ctx.tracer === undefined ? {} : { tracer: ctx.tracer }) });
  // Last, after every other onClose hook has logged what it did.
  if (logDestination !== null) {
    app.addHook("onClose", (_app, done) => {
      setImmediate(() => {
        logDestination.close();
        done();
      });
    });
  }
  // Hooks without I/O are callback-style: an async hook costs a promise and a microtask per request.
  app.addHook("onRequest", (request, reply, done) => {
    try {
      checkRequest(request, reply);
      done();
    } catch (error) {
      done(error as GerbangError);
    }
  });
  // After the hook above, so a shed request has its state like any other (audit, log, cookies).
  await shedding.register(app);
  const checkRequest = (request: FastifyRequest, reply: FastifyReply): void => {
    request.gerbang = { startedAt: process.hrtime.bigint() };
    request.gerbang.trace = tracing.start(request, request.headers, request.socket.remoteAddress, request.method);
    shedding.checkConnection(request);
    if (closing) {
      void reply.header("connection", "close");
      throw new GerbangError("NOT_READY", { reason: "SHUTTING_DOWN" });
    }
    if (request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1 && request.headers.host === undefined) {
      throw new GerbangError("MALFORMED_REQUEST", { reason: "MISSING_HOST" });
    }
    if (!validHost(request.raw.rawHeaders)) throw new GerbangError("MALFORMED_REQUEST", { reason: "INVALID_HOST" });
    if (hasObfuscatedFramingHeader(request.raw.rawHeaders)) throw new GerbangError("MALFORMED_REQUEST", { reason: "OBFUSCATED_FRAMING_HEADER", headers: { connection: "close" } });
    // Node's own cap (maxHeadersCount) would drop fields silently; it is lifted, and this limit refuses instead.
    if (request.raw.rawHeaders.length > 2 * config.server.maxHeaderCount) throw new GerbangError("HEADERS_TOO_LARGE", { reason: "TOO_MANY_HEADERS", headers: { connection: "close" } });
    const rejected = rejectedTargetReason(request.raw);
    if (rejected !== undefined) throw new GerbangError("BAD_REQUEST_TARGET", { reason: rejected });
    Object.assign(request.gerbang, splitTarget(request.url));
    // A key in a URL lands in logs and browser history: refuse it before anything can forward or log it.
    if (keyInQuery(request.gerbang.query ?? "")) throw new GerbangError("API_KEY_IN_QUERY");
    if (hasMethodOverride(request.gerbang.query ?? "")) throw methodOverrideRefused();
    // Only the proxy relays WebSockets, and only GET ones (Node 22 hands every Upgrade here).
    if (request.ws && !(config.websocket.enabled && request.method === "GET" && request.routeOptions.url === "/*" && isWebsocketUpgrade(request.headers.upgrade))) {
      throw new GerbangError("MALFORMED_REQUEST", { reason: "UNSUPPORTED_UPGRADE" });
    }
    // Checked before anything is asked of the upstream: ws would refuse it only after the upstream accepted.
    const refused = request.ws ? handshakeRefusal(request.headers) : null;
    if (refused !== null) throw new GerbangError("MALFORMED_REQUEST", { reason: refused, headers: { "sec-websocket-version": "13" } });
  };
  // Every answer names its request id (the one in the audit row, the access line and the 403 body), the upstream's included.
  app.addHook("onSend", (request, reply, payload, done) => {
    void reply.header("x-request-id", request.id);
    done(null, payload);
  });
  const logHeaders = app.log.level === "trace";
  const sampling = { allowed: config.audit.sampleAllowed, allowedByEndpoint: config.audit.sampleAllowedByEndpoint, rateLimited: config.audit.sampleRateLimited };
  /** Access line, audit event, span and metrics of an answered request (a WebSocket's at its 101). */
  const answered = (request: FastifyRequest, status: number, reply: FastifyReply | null): void => {
    const state = request.gerbang;
    const ms = Number(process.hrtime.bigint() - state.startedAt) / 1e6;
    // The access line: ids and outcomes only, never a header or a body (credentials never reach the log).
    request.log.info(
      {
        method: request.method,
        path: state.path,
        endpoint: state.endpoint?.endpoint.spec.id,
        status,
        ms: Math.round(ms * 10) / 10,
        user: state.principal?.userId ?? undefined,
        key: state.principal?.key?.id,
        decision: state.decision === undefined ? undefined : state.decision.allowed ? "allow" : "deny",
        reason: state.decision?.reason ?? state.errorReason ?? state.errorCode,
        rule: state.decision?.ruleId ?? undefined,
        policy: state.policy?.version,
      },
      "request",
    );
    // For debugging a client or an upstream: the headers both ways, credentials redacted by the logger.
    if (logHeaders) request.log.trace({ requestHeaders: request.headers, responseHeaders: reply?.getHeaders() ?? {} }, "headers");
    if (ctx.audit !== null) recordDecision(ctx.audit, request, status, sampling);
    tracing.end(request, {
      status,
      endpoint: state.endpoint?.endpoint.spec.id,
      decision: state.decision === undefined ? undefined : state.decision.allowed ? "allow" : "deny",
      reason: state.decision?.reason ?? state.errorReason ?? state.errorCode,
      upstream: state.upstream?.name,
    });
    if (metrics !== null) observe(metrics, request, status, ms / 1000);
  };
  app.addHook("onResponse", (request, reply, done) => {
    answered(request, reply.statusCode, reply);
    done();
  });

  app.setErrorHandler((error: FastifyError | GerbangError, request, reply) => {
    sendError(request, reply, toGerbangError(error, request.log));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new GerbangError(PROXY_METHODS.includes(request.method) ? "ROUTE_NOT_FOUND" : "METHOD_NOT_ALLOWED")),
  );

  const upstreamCheck = {
    name: "upstreams",
    critical: false,
    check: async () => {
      const failing = circuits.failing;
      if (failing.length > 0) throw new Error(`circuit not closed: ${failing.join(", ")}`);
    },
  };
  await app.register(systemRoutes, { signer: ctx.signer, checks: [...ctx.readiness, upstreamCheck] });
  const readiness = [...ctx.readiness, upstreamCheck];
  metrics = config.metrics.enabled
    ? new GatewayMetrics({
        ...(ctx.audit === null ? {} : { audit: ((a) => () => ({ pending: a.pending, written: a.written, shed: a.shed, lost: a.lost, checkpoints: a.checkpoints }))(ctx.audit) }),
        circuits: () => circuits.states,
        policyVersion: () => ctx.policies.current.policy.version,
        caches: () => [
          { cache: "sessions", ...ctx.sessions.stats },
          ...(ctx.keyStats === undefined ? [] : [{ cache: "keys", ...ctx.keyStats }]),
          { cache: "abilities", ...ctx.policies.current.abilities.stats },
          ...(ctx.resolverStats === undefined ? [] : [{ cache: "resolver", ...ctx.resolverStats }]),
        ],
        ...(ctx.activationOutcomes === undefined ? {} : { activations: ctx.activationOutcomes }),
        dependencies: () => Promise.all(readiness.map(async ({ name, check }) => ({ name, up: await withDeadline(check(), 1000) }))),
      })
    : null;
  metricsByApp.set(app, metrics);
  const limiter = await createRateLimiter(app, ctx.rateLimitCounters);
  const rateLimit = createRateLimitStage({ limiter, config: config.rateLimit });
  const authenticateOnly = createAuthenticate({ authenticators: ctx.authenticators, trustedOrigins });
  /** Authenticate; refused credentials count against the client address (no guessing oracle). */
  const authenticateCounted = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    rateLimit.guessing(request);
    try {
      await authenticateOnly(request);
    } catch (error) {
      if (error instanceof GerbangError && error.code === "INVALID_CREDENTIALS") await rateLimit.refused(request, reply);
      throw error;
    }
  };
  /** As the proxy counts, for routes without an endpoint of their own: the rest against the caller's bucket. */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await authenticateCounted(request, reply);
    await rateLimit.limit(request, reply);
  };
  const countCaller = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      await authenticate(request, reply);
    } catch (error) {
      // Better Auth answers an invalid session itself (null); it has been counted as refused.
      if (!(error instanceof GerbangError && error.code === "INVALID_CREDENTIALS")) throw error;
    }
  };
  const keyService = ctx.keys?.service;
  const auditStore = ctx.auditStore;
  await app.register(authRoutes, { auth: ctx.auth, sessions: ctx.sessions, publicUrl: ctx.publicUrl, trustedOrigins, limiter, rateLimit: config.rateLimit, countCaller, uniformResponseMs: config.auth.uniformResponseMs, ...(ctx.onUserChanged === undefined ? {} : { onUserChanged: ctx.onUserChanged }), ...(keyService === undefined ? {} : { revokeKeysOf: async (userId: string) => (await keyService.revokeAllOf(userId)).length }), ...(auditStore === undefined ? {} : { isDeleted: async (userId: string) => (await auditStore.user.count({ where: { id: userId, deletedAt: { not: null } } })) > 0, phone: phoneRoutes(auditStore, config.auth.phone) }) });

  if (ctx.keys !== null) await app.register(keyRoutes, { ...ctx.keys, authenticate, freshSignInSec: config.auth.freshSignInSec });
  if (auditStore !== undefined && ctx.keys !== null) await app.register(accountRoutes, { prisma: auditStore, keys: ctx.keys.service, authenticate, freshSignInSec: config.auth.freshSignInSec, erasureGraceDays: config.auth.erasureGraceDays, ...(ctx.onUserChanged === undefined ? {} : { onUserChanged: ctx.onUserChanged }) });
  if (ctx.auditStore !== undefined) await app.register(auditRoutes, { prisma: ctx.auditStore, authenticate, viewAllRoles: config.audit.viewAllRoles });
  const authorize = createAuthorize({ policies: ctx.policies, resolver: ctx.resolver, denialDetailsFor: config.policy.denialDetailsFor });
  if (metrics !== null) await app.register(metricsRoutes, { metrics, authenticate, authorize });
  await app.register(adminRoutes, { gatewayPrefix: config.admin.prefix, services: ctx.adminServices ?? (() => null), policies: ctx.policies, authenticate, authorize });
  // One pool per upstream origin, as many connections as the proxy may have requests in flight to it.
  const dispatcher = new Agent({ connections: 128, pipelining: 1 });
  app.addHook("onClose", async () => dispatcher.close());
  const proto = ctx.publicUrl.startsWith("https:") ? "https" : "http";
  const forward = createForward({
    dispatcher,
    bodyBudget: (request) => shedding.streamBudget(request),
    signer: ctx.signer,
    proto,
    circuits,
    responseHeaders: { remove: new Set(config.server.removeResponseHeaders.map((h) => h.toLowerCase())) },
    trackStream: (request, reply, cut) => {
      const { principal, upstream, path, decisionInput } = request.gerbang;
      if (principal === undefined || upstream === undefined || path === undefined) return () => undefined;
      const input = decisionInput === undefined ? undefined : { resource: decisionInput.resource, fields: decisionInput.fields };
      return live.add(
        {
          kind: "stream",
          principal,
          credential: request.gerbang.credential,
          method: request.method,
          path,
          upstream,
          address: request.ip,
          ...(input === undefined ? {} : { input }),
          // A cut response never finishes, so Fastify's onResponse never runs: its access line and audit event are written here.
          close: (reason) => {
            cut(reason);
            request.gerbang.errorReason = "CUT_ON_REVOCATION";
            answered(request, reply.statusCode, reply);
          },
        },
        request.gerbang.liveSince,
      );
    },
  });

  /** Why an open connection may no longer stay open (its credential, its roles, the policy now), or null. */
  const recheckConnection = async (connection: LiveConnection): Promise<string | null> => {
    let principal: Principal = ANONYMOUS;
    if (connection.credential !== undefined) {
      // No sliding refresh: an open connection must not keep its session alive past its expiry.
      const result = await connection.credential.authenticator.authenticate(connection.credential.value, { refresh: false });
      if (result.kind !== "authenticated") return "credentials revoked";
      principal = result.principal;
    }
    // The upstream was told the roles at the handshake: any change ends the connection, allowed or not.
    if (principal.userId !== connection.principal.userId || principal.roles.join(",") !== connection.principal.roles.join(",")) return "identity changed";
    const decision = await authorize.recheck(principal, connection.method, connection.path, connection.upstream, connection.input);
    return decision.allowed ? null : `no longer allowed: ${decision.reason}`;
  };
  const live = new LiveConnections(recheckConnection, (error) => app.log.warn({ err: { message: error instanceof Error ? error.message : String(error) } }, "an open connection could not be authorized again; closed"));
  const revoke = (concerned: Concerned): void => {
    live.revoke(concerned).then(
      (closed) => {
        if (closed > 0) app.log.info({ closed, concerned: concerned.kind }, "open connections closed on revocation");
      },
      (error: unknown) => app.log.error({ err: error }, "revocation of open connections failed"),
    );
  };
  ctx.revocations?.onInvalidate((message) => {
    // A policy message is acted on once the new version is active (onActivate, below).
    if (message.kind !== "policy") revoke(message);
  });
  ctx.policies.onActivate(() => revoke({ kind: "all" }));
  // Sessions and keys that expire while a connection is open: no message announces those.
  const sweep = setInterval(() => {
    if (live.size > 0) revoke({ kind: "all" });
  }, config.websocket.recheckIntervalMs);
  sweep.unref();
  app.addHook("onClose", async () => {
    clearInterval(sweep);
    // Handshakes that were past their checks when the gateway began to stop.
    live.closeAll("gateway shutting down");
  });
  websocket = createWebsocketStage({ limits: config.websocket, live, circuits, signer: ctx.signer, proto, answered: (request, status) => answered(request, status, null), closing: () => closing });
  const openWebsocket = websocket.open;

  await app.register(async (proxy) => {
    // Bodies are forwarded byte for byte; only the authorize stage parses JSON, and only when a policy needs it.
    proxy.removeAllContentTypeParsers();
    proxy.addContentTypeParser("*", (request, payload, done) => {
      const body = request.gerbang.body;
      // Streamed: the forward stage hands the stream to undici, counting it against the limit as it goes.
      if (body !== undefined && !body.read) return done(null, payload);
      readWholeBody(payload, declaredLength(request.headers), body?.limit ?? config.server.bufferedBodyLimitBytes, done);
    });

    proxy.addHook("onSend", (request, reply, payload, done) => {
      const renewed = request.gerbang.refreshCookies;
      if (renewed !== undefined) void reply.header("set-cookie", [...renewed]);
      // Answered before the client's streamed body was all read (a denial, an upstream that answered
      // early): the rest is not read either, so the connection cannot carry another request.
      if (request.body instanceof Readable && !request.raw.complete) void reply.header("connection", "close");
      done(null, payload);
    });

    const proxyRoute = {
      url: "/*",
      // Route and authenticate before the body is read: bad credentials are refused before any body is buffered.
      onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
        const upstream = upstreams.match(request.gerbang.path ?? "");
        if (upstream === null) throw new GerbangError("ROUTE_NOT_FOUND");
        request.gerbang.upstream = upstream;
        request.gerbang.liveSince = live.generation;
        await authenticateCounted(request, reply);
        // The limit after the endpoint match: an endpoint may have its own.
        authorize.select(request);
        const bodyLimit = upstream.bodyLimitBytes ?? config.server.bodyLimitBytes;
        request.gerbang.body = bodyIsRead(request.gerbang.endpoint?.endpoint.spec, request.headers["content-type"])
          ? { read: true, limit: Math.min(bodyLimit, config.server.bufferedBodyLimitBytes) }
          : { read: false, limit: bodyLimit };
        await rateLimit.limit(request, reply);
        authorize.precheck(request);
        // A declared length over the limit is refused before a byte of the body is read or forwarded.
        if ((declaredLength(request.headers) ?? 0) > request.gerbang.body.limit) {
          throw new GerbangError("PAYLOAD_TOO_LARGE", { headers: { connection: "close" } });
        }
      },
      handler: forward,
      onResponse: createInvalidateAfterWrite(ctx.resolver),
    };
    proxy.route({
      ...proxyRoute,
      method: "GET",
      // HEAD is the route below: an upgrade is a GET only.
      exposeHeadRoute: false,
      preHandler: [
        authorize.decide,
        // A WebSocket handshake: the upstream's connection is opened (or the handshake refused over HTTP)
        // before @fastify/websocket completes the client's upgrade and hands it to the relay.
        (request, _reply, done) => {
          if (!request.ws) return done();
          openWebsocket(request).then(() => done(), done);
        },
      ],
      wsHandler: (socket, request) => websocket?.relay(socket, request),
    });
    proxy.route({ ...proxyRoute, method: PROXY_METHODS.filter((m) => m !== "GET"), preHandler: authorize.decide });
  });
  return app;
}

function toGerbangError(error: FastifyError | GerbangError, log: { error: (obj: object, msg: string) => void; warn: (obj: object, msg: string) => void }): GerbangError {
  if (error instanceof GerbangError) return error;
  if (isUpstreamBodyError(error)) {
    log.warn({ code: error.code }, "upstream answer refused");
    return new GerbangError("UPSTREAM_UNREACHABLE", { reason: "INVALID_UPSTREAM_RESPONSE" });
  }
  const status = error.statusCode ?? 500;
  if (status === 413) return new GerbangError("PAYLOAD_TOO_LARGE");
  if (status === 415) return new GerbangError("UNSUPPORTED_MEDIA_TYPE");
  if (status === 431) return new GerbangError("HEADERS_TOO_LARGE");
  if (status === 503) return new GerbangError("NOT_READY");
  if (status >= 400 && status < 500) {
    log.error({ code: error.code, status }, "client error");
    return new GerbangError("MALFORMED_REQUEST");
  }
  log.error({ err: error }, "unhandled error");
  return new GerbangError("INTERNAL_ERROR");
}

/** Errors before a request exists (oversized headers, unparsable requests): same JSON shape. */
function clientError(error: Error & { code?: string }, socket: Socket & { _httpMessage?: { headersSent?: boolean } }): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  // A response already under way on this connection (a kept-alive follow-up timed out): writing ours would corrupt it.
  if (socket._httpMessage?.headersSent === true) {
    socket.destroy(error);
    return;
  }
  writeRawError(socket, error.code === "HPE_HEADER_OVERFLOW" ? "HEADERS_TOO_LARGE" : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "REQUEST_TIMEOUT" : "MALFORMED_REQUEST");
  socket.destroy(error);
}

/** Writes a catalogue error straight to a socket that Fastify never turned into a request. */
function writeRawError(socket: Duplex, code: "HEADERS_TOO_LARGE" | "MALFORMED_REQUEST" | "METHOD_NOT_ALLOWED" | "REQUEST_TIMEOUT" | "OVERLOADED", options: { reason?: string; extraHeaders?: string } = {}): void {
  if (!socket.writable) return;
  const body = JSON.stringify(errorBody(new GerbangError(code, options.reason === undefined ? {} : { reason: options.reason }), requestId()));
  const extraHeaders = options.extraHeaders ?? "";
  const { status } = ERRORS[code];
  socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extraHeaders}\r\n${body}`);
}

