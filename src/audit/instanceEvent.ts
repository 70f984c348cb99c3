import type { AuditEvent } from "./auditWriter.ts";
import type { JsonValue } from "./auditChain.ts";
import { boundedDetails } from "./recordDecision.ts";

export interface InstanceEventInput {
  action: string;
  allowed: boolean;
  reason: string;
  policyVersion?: string;
  actorId?: string | null;
  keyId?: string | null;
  /** How the actor was known: "cli" (an operator's shell), "session", "system" (the instance itself)… */
  authMethod?: string;
  roles?: string;
  target?: string | null;
  requestId?: string | null;
  details?: JsonValue;
}

/** An event no routed request carries: an instance activating a version, an operator's command. */
export function instanceEvent(e: InstanceEventInput): AuditEvent {
  return {
    at: new Date(),
    action: e.action,
    requestId: e.requestId ?? null,
    traceId: null,
    method: null,
    path: null,
    principalId: e.actorId ?? null,
    keyId: e.keyId ?? null,
    authMethod: e.authMethod ?? "system",
    roles: e.roles ?? "",
    clientIp: null,
    target: e.target ?? null,
    allowed: e.allowed,
    reason: e.reason,
    ruleId: null,
    policyVersion: e.policyVersion ?? "",
    upstream: null,
    status: null,
    endpointId: null,
    blockedFields: null,
    decisionInput: null,
    details: e.details === undefined ? null : boundedDetails(e.details),
  };
}
