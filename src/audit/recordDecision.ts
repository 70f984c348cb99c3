import type { FastifyRequest } from "fastify";
import type { AuditWriter } from "./auditWriter.ts";

/** One audit row per proxied (or admin API) request that reached a decision or was refused on its way there. */
export function recordDecision(audit: AuditWriter, request: FastifyRequest, status: number): void {
  const state = request.gerbang;
  if (state.upstream === undefined && state.gatewayRoute === undefined) return;
  const principal = state.principal;
  const decision = state.decision;
  audit.record({
    at: new Date(),
    requestId: request.id,
    method: request.method,
    path: state.path ?? "",
    principalId: principal?.userId ?? null,
    authMethod: principal?.authMethod ?? "unauthenticated",
    roles: (principal?.roles ?? []).join(","),
    // The policy's decision; `status` tells whether the upstream then answered.
    allowed: decision?.allowed === true,
    reason: decision?.reason ?? state.errorCode ?? "UNKNOWN",
    ruleId: decision?.ruleId ?? null,
    policyVersion: state.policy?.version ?? "",
    upstream: state.upstream?.name ?? null,
    status,
    endpointId: state.endpoint?.endpoint.spec.id ?? null,
    blockedFields: state.blockedFields === undefined || state.blockedFields.length === 0 ? null : state.blockedFields.join(","),
    decisionInput: decisionInput(state),
  });
}

/** Beyond this the inputs are not kept (the row says so): an audit row must not carry a whole document. */
export const DECISION_INPUT_MAX_BYTES = 2048;

/**
 * What the decision read that the row does not already say, for replaying it under another version:
 * the resource's attributes, the body's field names (never its values, unless the endpoint takes its
 * resource from the body) and an API key's scopes. Null when there is none of these (most reads):
 * the principal's attributes are read again at replay time from its id. Kept small because it is
 * written for every request.
 */
function decisionInput(state: FastifyRequest["gerbang"]): string | null {
  const input = state.decisionInput;
  const scopes = state.principal?.key?.scopes;
  const resource = input === undefined || Object.keys(input.resource).length === 0 ? undefined : input.resource;
  // With where they came from: a replay under a version that reads them elsewhere must not reuse them.
  const resourceFrom = resource === undefined ? undefined : input?.resourceFrom;
  const fields = input?.fieldsRead === true ? input.fields : undefined;
  if (resource === undefined && fields === undefined && scopes === undefined) return null;
  const text = JSON.stringify({ resource, resourceFrom, fields, scopes });
  return text.length <= DECISION_INPUT_MAX_BYTES / 4 || Buffer.byteLength(text) <= DECISION_INPUT_MAX_BYTES ? text : `{"truncated":true,"bytes":${Buffer.byteLength(text)}}`;
}
