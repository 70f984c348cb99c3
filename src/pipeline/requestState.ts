import type { Principal } from "../auth/principal.ts";
import type { Authenticator } from "../auth/authenticators/authenticator.ts";
import type { UpstreamConfig } from "../config/schema.ts";
import type { Decision } from "../policy/evaluate.ts";
import type { EndpointMatch } from "../policy/endpointMatcher.ts";
import type { PolicySet } from "../policy/policySet.ts";
import type { AbilityCache } from "../policy/abilityCache.ts";
import type { JsonValue } from "../audit/auditChain.ts";
import type { TraceContext } from "../tracing/traceContext.ts";

/**
 * What the pipeline knows about one request. Each stage writes its own field and reads only the
 * fields of earlier stages: normalize → route → authenticate → authorize → forward, audit last.
 */
export interface GatewayState {
  /** normalize: the canonical path the policy evaluates and the upstream receives. */
  path?: string;
  query?: string;
  /** route: the upstream owning the path. */
  upstream?: UpstreamConfig;
  /** route: how a proxied body is taken (read whole for the policy, or streamed) and its limit in bytes. */
  body?: { read: boolean; limit: number };
  /** authenticate. */
  principal?: Principal;
  /** route: how many revocations the open-connection registry had heard of before authentication (live/liveConnections). */
  liveSince?: number;
  /** authenticate: the credential and who verified it, to verify it again while a long-lived connection stays open. */
  credential?: { authenticator: Authenticator; value: string };
  /** authenticate: a renewed session cookie to hand back with whatever the response is. */
  refreshCookies?: readonly string[];
  /** authorize: the policy snapshot used for this request, the endpoint and the decision. */
  policy?: PolicySet;
  abilities?: AbilityCache;
  endpoint?: EndpointMatch;
  decision?: Decision;
  /** authorize: the resource and fields the decision read (audit rows keep them, bounded, so a diff can replay it). */
  decisionInput?: { resource: Record<string, unknown>; resourceFrom: string; fields: readonly string[]; fieldsRead: boolean };
  /** authorize, on a denial: every field no rule allows (the 403 names the first). */
  blockedFields?: readonly string[];
  /** The W3C trace this request belongs to (from a trusted traceparent, or new) and the gateway's span in it. */
  trace?: TraceContext;
  /** An event that is not a routed decision (a sign-in, a key created): audited under its own action. */
  event?: { action: string; actorId: string | null; target: string | null; reason?: string; details?: JsonValue };
  /** Set on the gateway's own routes that the policy authorizes (the admin API): audited like proxied requests. */
  gatewayRoute?: "admin";
  /** forward, on an endpoint with response masking: what the caller was not shown. */
  masked?: { removedFields: number; removedRecords: number };
  /** forward: how long the upstream took to its response headers (seconds). */
  upstreamSeconds?: number;
  /** The catalogue code's reason when the gateway answered with an error (RATE_LIMITED's bucket, say). */
  errorReason?: string;
  /** The catalogue code when the gateway answered with an error. */
  errorCode?: string;
  startedAt: bigint;
}

declare module "fastify" {
  interface FastifyRequest {
    gerbang: GatewayState;
  }
  interface FastifyContextConfig {
    /** The gateway's own routes: the id of the policy endpoint that must be the one to authorize them. */
    endpoint?: string;
  }
}
