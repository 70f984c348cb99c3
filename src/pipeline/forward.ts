import type { FastifyReply, FastifyRequest } from "fastify";
import type { IncomingHttpHeaders } from "node:http";
import { GerbangError } from "../errors/catalogue.ts";
import type { AssertionSigner } from "../identity/assertionSigner.ts";
import { upstreamHeaders } from "./upstreamHeaders.ts";
import { sanitizeResponseHeaders, type ResponseHeaderOptions } from "../forward/responseHeaders.ts";
import { sendError } from "./sendError.ts";
import type { UpstreamCircuits } from "../forward/upstreamCircuits.ts";
import { whenRequestEnds } from "./whenRequestEnds.ts";

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
}

/** Stage: forward. Only the canonical path and validated query leave the gateway, to the configured origin. */
export function createForward(options: ForwardOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    const { principal, upstream, path, query, policy, abilities } = request.gerbang;
    if (principal === undefined || upstream === undefined || path === undefined || policy === undefined || abilities === undefined) throw new GerbangError("INTERNAL_ERROR");
    const breaker = options.circuits.get(upstream.name);
    const admitted = breaker.tryAcquire();
    if (!admitted.allowed) {
      throw new GerbangError("UPSTREAM_UNAVAILABLE", { reason: "CIRCUIT_OPEN", headers: { "retry-after": String(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000))) } });
    }
    // Exactly one of success/failure/release per admitted request. Once dispatched, reply-from reports
    // the upstream's answer or failure even if the client has gone (undici is not aborted), so a client
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
    // The rules of the snapshot that authorized this request, not of a version activated since.
    const rules = abilities.get(principal.roles).rules;
    const scopeRules = principal.key === undefined ? undefined : abilities.forScopes(principal.key.scopes).rules;
    const assertion = await options.signer.assertionFor(principal, rules, policy.version, upstream.name, scopeRules);
    const headers = upstreamHeaders(request.headers, {
      principal,
      policyVersion: policy.version,
      requestId: request.id,
      assertion,
      clientIp: request.ip,
      proto: options.proto,
      trace: request.gerbang.trace,
    });
    // Passed explicitly: reply-from would re-serialize a buffered JSON body instead of sending its bytes.
    const body = request.body instanceof Buffer && request.body.length > 0 ? { body: request.body, contentType: request.headers["content-type"] ?? "application/octet-stream" } : {};
    // Nothing an upstream answers may throw out of these callbacks: they run inside undici's, where
    // no one would catch it and the process would die. What cannot be passed on becomes a 502.
    // The upstream's headers are applied only once its answer is known to be passed on, so a 502 of
    // the gateway never goes out with them (a Content-Encoding, a Set-Cookie).
    let passOn: IncomingHttpHeaders | null = null;
    let unusable: unknown;
    let answered = false;
    const answer = (error: GerbangError): void => {
      if (answered || reply.sent) return;
      answered = true;
      sendError(request, reply, error);
    };
    const refuse = (error: unknown): void => {
      request.log.warn({ upstream: upstream.name, err: { message: messageOf(error) } }, "upstream answer refused");
      answer(new GerbangError("UPSTREAM_UNREACHABLE", { reason: "INVALID_UPSTREAM_RESPONSE" }));
    };
    return reply.from(`${upstream.url.replace(/\/$/, "")}${path}`, {
      ...body,
      timeout: upstream.timeoutMs,
      queryString: () => (query ?? "").slice(1),
      rewriteRequestHeaders: () => {
        dispatched = true;
        request.gerbang.upstreamSentAt = process.hrtime.bigint();
        return headers as IncomingHttpHeaders;
      },
      rewriteHeaders: (h: IncomingHttpHeaders) => {
        const sent = request.gerbang.upstreamSentAt;
        if (sent !== undefined) request.gerbang.upstreamSeconds = Number(process.hrtime.bigint() - sent) / 1e9;
        try {
          passOn = sanitizeResponseHeaders(h, options.responseHeaders);
          // Here, not in onResponse: reply-from skips onResponse when the client has gone meanwhile.
          settle("success");
        } catch (error) {
          unusable = error;
          settle("failure");
        }
        return {};
      },
      onResponse: (_request, _reply, res) => {
        try {
          // reply-from has already called onError for a status Fastify refuses (e.g. 999).
          if (answered || reply.sent || unusable !== undefined || passOn === null) {
            res.stream.destroy();
            if (unusable !== undefined) refuse(unusable);
            return;
          }
          void reply.headers(passOn);
          // Registered before Fastify's own listener, so the error is marked when Fastify sees it.
          res.stream.once("error", (error: unknown) => {
            if (typeof error === "object" && error !== null) upstreamBodyErrors.add(error);
          });
          answered = true;
          reply.send(res.stream);
        } catch (error) {
          res.stream.destroy();
          refuse(error);
        }
      },
      onError: (_reply, { error }) => {
        try {
          const { statusCode: status, code } = error as { statusCode?: number; code?: string };
          settle("failure");
          // FST_REPLY_FROM_BAD_GATEWAY: the upstream answered, with a status no HTTP response may have.
          if (code === "FST_REPLY_FROM_BAD_GATEWAY") {
            refuse(error);
            return;
          }
          request.log.warn({ upstream: upstream.name, code }, "upstream request failed");
          answer(new GerbangError(status === 504 ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE"));
        } catch (failure) {
          request.log.error({ upstream: upstream.name, err: { message: messageOf(failure) } }, "upstream failure not answered");
          reply.raw.destroy();
        }
      },
    });
  };
}
