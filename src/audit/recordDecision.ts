import type { FastifyRequest } from "fastify";
import type { AuditWriter } from "./auditWriter.ts";

/** One audit row per proxied request that reached a decision or was refused on its way there. */
export function recordDecision(audit: AuditWriter, request: FastifyRequest, status: number): void {
  const state = request.gerbang;
  if (state.upstream === undefined) return;
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
    upstream: state.upstream.name,
    status,
    endpointId: state.endpoint?.endpoint.spec.id ?? null,
    blockedFields: state.blockedFields === undefined || state.blockedFields.length === 0 ? null : state.blockedFields.join(","),
    decisionInput: decisionInput(state),
  });
}

/** Beyond this the inputs are not kept (the row says so): an audit row must not carry a whole document. */
export const DECISION_INPUT_MAX_BYTES = 2048;

/**
 * What the decision read, for replaying it under another version: the principal's attributes and key
 * scopes, the resource's attributes and the body's field names (never the body's values unless the
 * endpoint takes its resource from the body).
 */
function decisionInput(state: FastifyRequest["gerbang"]): string | null {
  if (state.decision === undefined || state.principal === undefined) return null;
  const input = {
    attributes: state.principal.attributes,
    scopes: state.principal.key?.scopes ?? null,
    resource: state.decisionInput?.resource ?? null,
    fields: state.decisionInput?.fields ?? [],
  };
  const text = JSON.stringify(input);
  return Buffer.byteLength(text) <= DECISION_INPUT_MAX_BYTES ? text : JSON.stringify({ truncated: true, bytes: Buffer.byteLength(text) });
}
