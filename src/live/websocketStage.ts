import type { FastifyRequest } from "fastify";
import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";
import { GerbangError } from "../errors/catalogue.ts";
import type { GerbangConfig } from "../config/schema.ts";
import type { AssertionSigner } from "../identity/assertionSigner.ts";
import type { UpstreamCircuits } from "../forward/upstreamCircuits.ts";
import { signedIdentityHeaders } from "../pipeline/signedIdentity.ts";
import { connectUpstream, relay } from "./websocketRelay.ts";
import { offeredProtocols } from "./websocketHandshake.ts";
import type { LiveConnection, LiveConnections } from "./liveConnections.ts";

export interface WebsocketStageOptions {
  limits: GerbangConfig["websocket"];
  live: LiveConnections;
  circuits: UpstreamCircuits;
  signer: AssertionSigner;
  proto: "http" | "https";
  /** The request's access line, audit event and metrics, once its handshake is answered with 101. */
  answered: (request: FastifyRequest, status: number) => void;
  /** The gateway is stopping: no handshake is completed any more. */
  closing: () => boolean;
}

/** What the client's 101 carries, known once the upstream accepted: read by the ws server's hooks. */
interface Accepted {
  requestId: string;
  protocol: string | null;
  cookies: readonly string[];
}

/** Connection errors that mean the upstream is not there (as undici's count for HTTP requests). */
const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * Stage: forward, for a WebSocket handshake the policy allowed. The connection to the upstream is
 * opened first, with the identity headers and assertion an HTTP request gets; only once the upstream
 * accepted is the client's upgrade completed (by @fastify/websocket), and messages are relayed. An
 * upstream that answers with anything but 101 is a 502 (reason UPGRADE_REFUSED) to the client.
 */
export function createWebsocketStage(options: WebsocketStageOptions): {
  open: (request: FastifyRequest) => Promise<void>;
  relay: (client: WebSocket, request: FastifyRequest) => void;
  /** For the ws server: the subprotocol to accept, and the headers of the 101. */
  protocolFor: (request: IncomingMessage) => string | false;
  headersFor: (headers: string[], request: IncomingMessage) => void;
} {
  const { limits, live } = options;
  const accepted = new WeakMap<IncomingMessage, Accepted>();
  /** A handshake the upstream accepted, waiting for the client's upgrade to complete. */
  const pending = new WeakMap<FastifyRequest, { upstream: WebSocket; remove: () => void; started: (stop: (code: number, reason: string) => void) => void }>();

  const open = async (request: FastifyRequest): Promise<void> => {
    const state = request.gerbang;
    const { principal, upstream, path } = state;
    if (principal === undefined || upstream === undefined || path === undefined) throw new GerbangError("INTERNAL_ERROR");
    // Masking rewrites an answer field by field; a WebSocket's messages pass unread.
    if (state.endpoint?.endpoint.spec.response !== undefined) {
      throw new GerbangError("MALFORMED_REQUEST", { reason: "UNSUPPORTED_UPGRADE", message: "This endpoint's answers are masked field by field, which a WebSocket's messages cannot be." });
    }
    if (options.closing()) throw new GerbangError("NOT_READY", { reason: "SHUTTING_DOWN" });
    const counts = live.counts(principal, request.ip);
    if (counts.principal >= limits.maxPerPrincipal) throw new GerbangError("CONNECTION_LIMIT", { reason: "PER_PRINCIPAL" });
    if (counts.address >= limits.maxPerAddress) throw new GerbangError("CONNECTION_LIMIT", { reason: "PER_ADDRESS" });
    // Counted from now, so handshakes under way count against the limits too.
    let stop: ((code: number, reason: string) => void) | null = null;
    let upstreamSocket: WebSocket | null = null;
    // Once the handshake has an outcome (relaying, an error answered over HTTP, or ended early), nothing else ends it.
    let settled = false;
    /** Allowed, but ended before the upgrade completed: audited and logged as 499 (the client's side went away). */
    const endEarly = (why: string): void => {
      if (settled) return;
      settled = true;
      pending.delete(request);
      upstreamSocket?.terminate();
      remove();
      state.errorReason = why;
      options.answered(request, 499);
    };
    const entry: LiveConnection = {
      kind: "websocket",
      principal,
      credential: state.credential,
      method: "GET",
      path,
      upstream,
      address: request.ip,
      close: (reason, code = 1008) => {
        if (stop !== null) return stop(code, reason);
        // Revoked (or the gateway stopping) while the handshake was under way.
        endEarly(code === 1001 ? "SHUTTING_DOWN" : "REVOKED_DURING_HANDSHAKE");
        request.raw.socket.destroy();
      },
    };
    const remove = live.add(entry, state.liveSince);
    // A client gone before its upgrade was completed: nothing is relayed, the upstream is let go.
    request.raw.socket.once("close", () => {
      if (stop === null) endEarly("CLIENT_GONE");
    });
    /** An error answered over HTTP (the onResponse hook audits it). */
    const refuse = (error: GerbangError): never => {
      settled = true;
      remove();
      throw error;
    };

    const breaker = options.circuits.get(upstream.name);
    const admitted = breaker.tryAcquire();
    if (!admitted.allowed) return refuse(new GerbangError("UPSTREAM_UNAVAILABLE", { reason: "CIRCUIT_OPEN", headers: { "retry-after": String(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000))) } }));
    let refused: { refused: IncomingMessage } | null;
    try {
      const headers = await signedIdentityHeaders(request, options.signer, options.proto);
      if (settled) {
        breaker.release(admitted.ticket);
        return;
      }
      const connecting = connectUpstream({ url: `${upstream.url}${path}${state.query ?? ""}`, headers, protocols: offeredProtocols(request.headers["sec-websocket-protocol"]), maxMessageBytes: limits.maxMessageBytes, timeoutMs: upstream.timeoutMs });
      upstreamSocket = connecting.socket;
      refused = await connecting.opened;
    } catch (error) {
      // Ended meanwhile (the client gone, a revocation): the gateway aborted the connection itself.
      if (settled) {
        breaker.release(admitted.ticket);
        return;
      }
      // Only an upstream that cannot be reached counts against its circuit: one that is reached but hangs
      // up on the handshake (no WebSocket there) must not let clients open the circuit for everyone.
      const code = (error as { code?: unknown }).code;
      if (typeof code === "string" && UNREACHABLE.has(code)) breaker.failure(admitted.ticket);
      else breaker.release(admitted.ticket);
      request.log.warn({ upstream: upstream.name, code, err: { message: error instanceof Error ? error.message : String(error) } }, "upstream websocket failed");
      return refuse(new GerbangError("UPSTREAM_UNREACHABLE"));
    }
    breaker.success(admitted.ticket);
    if (refused !== null) {
      // Its answer is not passed on: the client asked for a WebSocket, and the error names why there is none.
      request.log.warn({ upstream: upstream.name, status: refused.refused.statusCode }, "upstream refused the websocket upgrade");
      refused.refused.destroy();
      if (settled) return;
      return refuse(new GerbangError("UPSTREAM_UNREACHABLE", { reason: "UPGRADE_REFUSED" }));
    }
    const opened = upstreamSocket;
    // Ended meanwhile (the client gone, a revocation): the upstream's connection is let go at once.
    if (settled || request.raw.socket.destroyed) {
      opened.terminate();
      endEarly("CLIENT_GONE");
      return;
    }
    accepted.set(request.raw, { requestId: request.id, protocol: opened.protocol === "" ? null : opened.protocol, cookies: state.refreshCookies ?? [] });
    pending.set(request, {
      upstream: opened,
      remove,
      started: (relaying) => {
        settled = true;
        stop = relaying;
      },
    });
  };

  const relayFor = (client: WebSocket, request: FastifyRequest): void => {
    const waiting = pending.get(request);
    if (waiting === undefined) {
      client.terminate();
      return;
    }
    pending.delete(request);
    if (options.closing()) {
      waiting.started(() => undefined);
      client.close(1001, "gateway shutting down");
      waiting.upstream.close(1001, "gateway shutting down");
      waiting.remove();
      options.answered(request, 101);
      return;
    }
    const openedAt = process.hrtime.bigint();
    const stop = relay(client, waiting.upstream, {
      idleTimeoutMs: limits.idleTimeoutMs,
      onClosed: ({ by, code, reason }) => {
        waiting.remove();
        const ms = Number(process.hrtime.bigint() - openedAt) / 1e6;
        request.log.info({ endpoint: request.gerbang.endpoint?.endpoint.spec.id, by, code, reason, ms: Math.round(ms) }, "websocket closed");
      },
    });
    waiting.started(stop);
    options.answered(request, 101);
  };

  return {
    open,
    relay: relayFor,
    protocolFor: (request) => accepted.get(request)?.protocol ?? false,
    headersFor: (headers, request) => {
      const known = accepted.get(request);
      if (known === undefined) return;
      headers.push(`X-Request-Id: ${known.requestId}`);
      for (const cookie of known.cookies) headers.push(`Set-Cookie: ${cookie}`);
    },
  };
}
