import type { FastifyRequest } from "fastify";
import type { AuditWriter } from "./auditWriter.ts";
import { storableJson, type JsonValue } from "./auditChain.ts";

export interface AuditSampling {
  /** Share of allowed routed requests audited (0–1), by endpoint id, then the default. */
  allowed: number;
  allowedByEndpoint: Readonly<Record<string, number>>;
  /** Share of rate-limit refusals audited: a flood must not become a flood of rows. */
  rateLimited: number;
}

const sampled = (rate: number): boolean => rate >= 1 || (rate > 0 && Math.random() < rate);

/**
 * One audit event per request that reached a decision or was refused on its way there (proxied
 * requests, the admin API), or that carried an event of its own (a sign-in). Denials are always
 * kept; allows and rate-limit refusals are sampled and are the first to go when the queue is full.
 */
export function recordDecision(audit: AuditWriter, request: FastifyRequest, status: number, sampling: AuditSampling): void {
  const state = request.gerbang;
  const event = state.event;
  if (state.upstream === undefined && state.gatewayRoute === undefined && event === undefined) return;
  const principal = state.principal;
  const decision = state.decision;
  const endpointId = state.endpoint?.endpoint.spec.id ?? null;
  const rateLimited = state.errorCode === "RATE_LIMITED";
  const allowed = event === undefined ? decision?.allowed === true : status < 400;
  if (rateLimited) {
    if (!sampled(sampling.rateLimited)) return;
  } else if (allowed && event === undefined && !sampled((endpointId === null ? undefined : sampling.allowedByEndpoint[endpointId]) ?? sampling.allowed)) {
    return;
  }
  audit.record({
    at: new Date(),
    action: event?.action ?? "request",
    requestId: request.id,
    traceId: state.trace?.traceId ?? null,
    method: request.method,
    path: state.path ?? "",
    principalId: event?.actorId ?? principal?.userId ?? null,
    keyId: principal?.key?.id ?? null,
    authMethod: principal?.authMethod ?? "unauthenticated",
    roles: (principal?.roles ?? []).join(","),
    clientIp: request.ip,
    target: event?.target?.slice(0, 200) ?? null,
    // The policy's decision (or the event's outcome); `status` tells whether the upstream then answered.
    allowed,
    reason: event?.reason ?? decision?.reason ?? state.errorCode ?? (event === undefined ? "UNKNOWN" : status < 400 ? "OK" : `HTTP_${status}`),
    ruleId: decision?.ruleId ?? null,
    policyVersion: state.policy?.version ?? "",
    upstream: state.upstream?.name ?? null,
    status,
    endpointId,
    blockedFields: state.blockedFields === undefined || state.blockedFields.length === 0 ? null : state.blockedFields.join(","),
    decisionInput: decisionInput(state),
    // A masked answer's row says how much of it the caller was not shown.
    details: event?.details !== undefined ? boundedDetails(event.details) : state.masked === undefined ? null : { masked: state.masked },
    sheddable: rateLimited || (allowed && event === undefined),
  });
}

/** Beyond this the inputs are not kept (the row says so): an audit row must not carry a whole document. */
export const DECISION_INPUT_MAX_BYTES = 2048;
export const DETAILS_MAX_BYTES = 1024;

const bounded = (value: JsonValue, max: number): JsonValue => {
  const text = JSON.stringify(value);
  return text.length <= max / 4 || Buffer.byteLength(text) <= max ? value : { truncated: true, bytes: Buffer.byteLength(text) };
};

export const boundedDetails = (details: JsonValue): JsonValue => bounded(storableJson(details), DETAILS_MAX_BYTES);

/**
 * What the decision read that the row does not already say, for replaying it under another version:
 * the resource's attributes, the body's field names (never its values, unless the endpoint takes its
 * resource from the body) and an API key's scopes. Null when there is none of these (most reads):
 * the principal's attributes are read again at replay time from its id. Kept small because it is
 * written for every request.
 */
function decisionInput(state: FastifyRequest["gerbang"]): JsonValue | null {
  const input = state.decisionInput;
  const scopes = state.principal?.key?.scopes;
  const resource = input === undefined || Object.keys(input.resource).length === 0 ? undefined : input.resource;
  // With where they came from: a replay under a version that reads them elsewhere must not reuse them.
  const resourceFrom = resource === undefined ? undefined : input?.resourceFrom;
  const fields = input?.fieldsRead === true ? input.fields : undefined;
  if (resource === undefined && fields === undefined && scopes === undefined) return null;
  return bounded(storableJson({ resource, resourceFrom, fields, scopes }), DECISION_INPUT_MAX_BYTES);
}
