import type { AbilityCache } from "./abilityCache.ts";
import { decideEndpoint, paramAttributes, precheckEndpoint, type RequestPrincipal } from "./decideRequest.ts";
import type { Decision } from "./evaluate.ts";

/** A decision as an audit row recorded it, with what the decision read. */
export interface RecordedDecision {
  requestId: string;
  method: string;
  path: string;
  principal: RequestPrincipal;
  allowed: boolean;
  /** The recorded resource attributes (decision_input) and where they came from, where the decision got that far. */
  resource: Record<string, unknown> | null;
  resourceFrom: string | null;
  /** The body's field names, when the decision read them (null: it never did). */
  fields: readonly string[] | null;
}

export type Replayed = { decided: true; decision: Decision; endpointId: string | null } | { decided: false; why: string; endpointId: string | null };

/**
 * Decides a recorded request again under another version, with the attributes recorded with it. A
 * request the new version would decide on attributes that were never read (it was refused before they
 * were) cannot be replayed, and says so rather than guessing.
 */
export function replayDecision(abilities: AbilityCache, recorded: RecordedDecision): Replayed {
  const match = abilities.policy.matcher.match(recorded.method, recorded.path);
  const endpointId = match?.endpoint.spec.id ?? null;
  const early = precheckEndpoint(abilities, recorded.principal, match);
  if (early !== null || match === null) return { decided: true, decision: early ?? { allowed: false, reason: "ENDPOINT_NOT_MAPPED", ruleId: null }, endpointId };
  const { spec } = match.endpoint;
  const from = spec.resource?.from ?? "none";
  let resource: Record<string, unknown> = {};
  if (from === "params") resource = paramAttributes(match.params);
  else if (from === "body" || from === "resolver") {
    if (recorded.resource === null) return { decided: false, why: "needs the resource's attributes, which were not read (the request was refused before)", endpointId };
    if (recorded.resourceFrom !== from) return { decided: false, why: `reads the resource from ${from}, where the recorded decision read it from ${recorded.resourceFrom ?? "nowhere"}`, endpointId };
    resource = recorded.resource;
  }
  if (spec.fields === "body" && recorded.fields === null) return { decided: false, why: "needs the body's field names, which the recorded decision did not read", endpointId };
  const fields = spec.fields === "body" ? (recorded.fields ?? []) : [];
  return { decided: true, decision: decideEndpoint(abilities, recorded.principal, spec, resource, fields), endpointId };
}

