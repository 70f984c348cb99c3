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
  });
}
