import type { FastifyReply, FastifyRequest } from "fastify";
import type { Dispatcher } from "undici";
import type { IncomingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import { GerbangError } from "../errors/catalogue.ts";
import type { AssertionSigner } from "../identity/assertionSigner.ts";
import { signedIdentityHeaders } from "./signedIdentity.ts";
import { sanitizeResponseHeaders, type ResponseHeaderOptions } from "../forward/responseHeaders.ts";
import { sendError } from "./sendError.ts";
import type { UpstreamCircuits } from "../forward/upstreamCircuits.ts";
import { whenRequestEnds } from "./whenRequestEnds.ts";
import { discardBody } from "./discardBody.ts";
import { forMasking, masksAnswer, sendMasked, withoutOriginalHeaders } from "./maskResponse.ts";
import { meteredBody, StreamedBodyError, type BodyBudget } from "./requestBody.ts";

/**
 * Errors of an upstream body stream: when one fails before the answer's head went out, Fastify hands
 * it to the error handler, which must answer 502 rather than take it for a gateway fault.
 */
const upstreamBodyErrors = new WeakSet<object>();
export function isUpstreamBodyError(error: unknown): boolean {
  return typeof error === "object" && error !== null && upstreamBodyErrors.has(error);
}

/** Only the message is logged: an upstream's error may carry its whole answer. */
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export interface ForwardOptions {
  signer: AssertionSigner;
  proto: "http" | "https";
  circuits: UpstreamCircuits;
  responseHeaders: ResponseHeaderOptions;
  /** undici's connection pools to the upstreams (an Agent), shared by every request. */
  dispatcher: Dispatcher;
  /** The budgets a streamed body's parts are counted against (load shedding's, per address and overall). */
  bodyBudget: (request: FastifyRequest) => BodyBudget;
  /**
   * A response that may stay open for long (an event stream, a body without a length) is registered while
   * it flows, so a revocation can cut it; the function returned unregisters it.
   */
  trackStream?: (request: FastifyRequest, reply: FastifyReply, cut: (reason: string) => void) => () => void;
}

/** Stage: forward. Only the canonical path and validated query leave the gateway, to the configured origin. */
export function createForward(options: ForwardOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  const { dispatcher } = options;
  return async (request, reply) => {
    const { principal, upstream, path, query, abilities } = request.gerbang;
    if (principal === undefined || upstream === undefined || path === undefined || abilities === undefined) throw new GerbangError("INTERNAL_ERROR");
    const breaker = options.circuits.get(upstream.name);
    const admitted = breaker.tryAcquire();
    if (!admitted.allowed) {
      throw new GerbangError("UPSTREAM_UNAVAILABLE", { reason: "CIRCUIT_OPEN", headers: { "retry-after": String(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000))) } });
    }
    // Exactly one of success/failure/release per admitted request. Once dispatched, the upstream's
    // answer or failure is reported even if the client has gone (undici is not aborted), so a client
    // hanging up releases only a request that never left.
    let settled = false;
    let dispatched = false;
    const settle = (outcome: "success" | "failure" | "release"): void => {
      if (settled) return;
      settled = true;
      breaker[outcome](admitted.ticket);
    };
    whenRequestEnds(request, reply, () => {
      if (!dispatched) settle("release");
    });
    const identityHeaders = await signedIdentityHeaders(request, options.signer, options.proto);
    const endpoint = request.gerbang.endpoint?.endpoint.spec;
    const masking = endpoint?.response;
    const headers = masking === undefined ? identityHeaders : forMasking(identityHeaders);
    // A body the policy read: the bytes as received (buffered, never parsed), framed by undici. Any
    // other: the client's stream, passed on as it arrives, with the length the client declared.
    const given: unknown = request.body;
    let body: Buffer | AsyncGenerator<Buffer> | null = null;
    if (given instanceof Buffer) body = given.length > 0 ? given : null;
    else if (given instanceof Readable) {
      body = meteredBody(given, request.gerbang.body?.limit ?? 0, options.bodyBudget(request));
      const declared = request.headers["content-length"];
      if (request.headers["transfer-encoding"] === undefined && typeof declared === "string") headers["content-length"] = declared;
    }
    dispatched = true;
    const sentAt = process.hrtime.bigint();
    let answer: Dispatcher.ResponseData;
    try {
      answer = await dispatcher.request({
        origin: upstream.url,
        path: `${path}${query ?? ""}`,
        method: request.method as Dispatcher.HttpMethod,
        headers: headers as Record<string, string | string[]>,
        // undici documents Iterable and AsyncIterable bodies (docs/api/Dispatcher.md); its types lag.
        body: body as Buffer | Readable | null,
        headersTimeout: upstream.timeoutMs,
        bodyTimeout: upstream.responseIdleTimeoutMs ?? upstream.timeoutMs,
      });
    } catch (error) {
      if (error instanceof StreamedBodyError) {
        // The client's side failed (too large, over budget, gone): the upstream is not to blame.
        settle("release");
        if (error.refusal !== null && !reply.sent && !reply.raw.destroyed) sendError(request, reply, error.refusal);
        return reply;
      }
      settle("failure");
      const code = (error as { code?: unknown }).code;
      request.log.warn({ upstream: upstream.name, code }, "upstream request failed");
      if (!reply.sent) sendError(request, reply, new GerbangError(code === "UND_ERR_HEADERS_TIMEOUT" ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE"));
      return reply;
    }
    request.gerbang.upstreamSeconds = Number(process.hrtime.bigint() - sentAt) / 1e9;
    const { statusCode, body: stream } = answer;
    // The upstream's headers are applied only once its answer is known to be passed on, so a 502 of
    // the gateway never goes out with them (a Content-Encoding, a Set-Cookie).
    let passOn: IncomingHttpHeaders;
    try {
      passOn = sanitizeResponseHeaders(answer.headers, options.responseHeaders);
      // A status Fastify refuses (e.g. 999) is an answer no HTTP response may have.
      if (statusCode < 100 || statusCode > 599) throw new Error(`upstream answered with status ${statusCode}`);
      settle("success");
    } catch (error) {
      settle("failure");
      discardBody(stream);
      request.log.warn({ upstream: upstream.name, err: { message: messageOf(error) } }, "upstream answer refused");
      if (!reply.sent) sendError(request, reply, new GerbangError("UPSTREAM_UNREACHABLE", { reason: "INVALID_UPSTREAM_RESPONSE" }));
      return reply;
    }
    // Not request.raw.destroyed: a request whose body was read is destroyed (autoDestroy) with its client still there.
    if (reply.sent || request.raw.aborted || reply.raw.destroyed) {
      // The client has gone meanwhile: nothing to answer, and the upstream's body is not read.
      discardBody(stream);
      return reply;
    }
    if (masking !== undefined && endpoint !== undefined) {
      if (masksAnswer(request.method, statusCode)) return sendMasked(request, reply, masking, endpoint.subject, { statusCode, headers: passOn, stream }, { principal, abilities });
      passOn = withoutOriginalHeaders(passOn);
    }
    // Registered before Fastify's own listener, so the error is marked when Fastify sees it.
    stream.once("error", (error: unknown) => {
      if (typeof error === "object" && error !== null) upstreamBodyErrors.add(error);
    });
    if (options.trackStream !== undefined && longLived(request.method, statusCode, passOn)) {
      const untrack = options.trackStream(request, reply, (reason) => {
        request.log.info({ endpoint: endpoint?.id, reason }, "streaming response cut");
        stream.destroy();
        reply.raw.destroy();
      });
      reply.raw.once("close", untrack);
    }
    // Returned: an async handler's reply tells Fastify the answer is under way (a stream still
    // flowing is not "sent", and Fastify would otherwise send an empty body after it).
    return reply.code(statusCode).headers(passOn).send(stream);
  };
}

/** An answer that may flow for long: an event stream, or a body of no declared length. */
function longLived(method: string, status: number, headers: IncomingHttpHeaders): boolean {
  if (method === "HEAD" || status === 204 || status === 304) return false;
  const type = headers["content-type"];
  return headers["content-length"] === undefined || (typeof type === "string" && type.toLowerCase().startsWith("text/event-stream"));
}
