import type { AbilityCache } from "./abilityCache.ts";
import type { PrincipalAttributes } from "./conditions.ts";
import type { EndpointMatch } from "./endpointMatcher.ts";
import { evaluateWithin, mayApply, type Decision } from "./evaluate.ts";
import type { EndpointSpec } from "./schema.ts";

/** Who asks, as the policy sees it: a role set with attributes, and an API key's scopes (null: not a key). */
export interface RequestPrincipal {
  roles: readonly string[];
  attributes: PrincipalAttributes;
  scopes: readonly string[] | null;
  anonymous: boolean;
}

/**
 * The gateway's decision for a request, in two steps shared by the pipeline (src/pipeline/authorize.ts),
 * policy tests written as requests and explain: one code path, so a test that passes means the gateway
 * answers the same. Step one runs before a byte of the body is read.
 */
export function precheckEndpoint(abilities: AbilityCache, principal: RequestPrincipal, match: EndpointMatch | null): Decision | null {
  if (match === null) return { allowed: false, reason: "ENDPOINT_NOT_MAPPED", ruleId: null };
  const { spec } = match.endpoint;
  if (!mayApply(abilities.get(principal.roles).ability, spec.action, spec.subject)) return { allowed: false, reason: "NO_MATCHING_RULE", ruleId: null };
  if (principal.scopes !== null && !mayApply(abilities.forScopes(principal.scopes).ability, spec.action, spec.subject)) {
    return { allowed: false, reason: "OUTSIDE_KEY_SCOPE", ruleId: null };
  }
  return null;
}

/** Step two: the resource's attributes and the body's fields are known. */
export function decideEndpoint(
  abilities: AbilityCache,
  principal: RequestPrincipal,
  spec: EndpointSpec,
  resource: Record<string, unknown>,
  fields: readonly string[],
): Decision {
  const scope = principal.scopes === null ? null : abilities.forScopes(principal.scopes).ability;
  const listing = spec.resource?.from === "filter";
  return evaluateWithin(abilities.get(principal.roles).ability, scope, { action: spec.action, subject: spec.subject, resource, fields, principal: principal.attributes }, listing);
}

/**
 * Every requested field the principal may not write (the decision names only the first). Computed for
 * denials only: the explanation in audit rows, explain and admins' 403 details.
 */
export function blockedFields(abilities: AbilityCache, principal: RequestPrincipal, spec: EndpointSpec, resource: Record<string, unknown>, fields: readonly string[]): string[] {
  return fields.filter((field) => !decideEndpoint(abilities, principal, spec, resource, [field]).allowed);
}

/** The status a denial gets: anonymous callers are asked to sign in, except where no endpoint exists at all. */
export function deniedStatus(decision: Decision, anonymous: boolean): 401 | 403 {
  return anonymous && decision.reason !== "ENDPOINT_NOT_MAPPED" ? 401 : 403;
}

/** A request as a policy test or explain states it: the canonical path, the JSON body, the resource's attributes. */
export interface StatedRequest {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  /** What the owning upstream's resolver would answer for a `resolver` endpoint; absent: it answers 404. */
  resource?: Record<string, unknown>;
}

export interface RequestOutcome {
  /** 200: forwarded to the upstream. */
  status: 200 | 401 | 403 | 404;
  /** A decision reason, or RESOURCE_NOT_FOUND when the resolver has no such resource. */
  reason: Decision["reason"] | "RESOURCE_NOT_FOUND";
  ruleId: string | null;
  endpointId: string | null;
  field?: string;
  /** The attributes and fields the decision used (explain shows them). */
  resource: Record<string, unknown>;
  fields: readonly string[];
}

/** Decides a stated request exactly as the gateway would, without HTTP, a database or an upstream. */
export function decideRequest(abilities: AbilityCache, principal: RequestPrincipal, request: StatedRequest): RequestOutcome {
  const path = request.path.split("?")[0] ?? request.path;
  const match = abilities.policy.matcher.match(request.method.toUpperCase(), path);
  const endpointId = match?.endpoint.spec.id ?? null;
  const outcome = (decision: Decision, resource: Record<string, unknown> = {}, fields: readonly string[] = []): RequestOutcome => ({
    status: decision.allowed ? 200 : deniedStatus(decision, principal.anonymous),
    reason: decision.reason,
    ruleId: decision.ruleId,
    endpointId,
    ...(decision.field === undefined ? {} : { field: decision.field }),
    resource,
    fields,
  });
  const early = precheckEndpoint(abilities, principal, match);
  if (early !== null || match === null) return outcome(early ?? { allowed: false, reason: "ENDPOINT_NOT_MAPPED", ruleId: null });
  const { spec } = match.endpoint;
  const from = spec.resource?.from ?? "none";
  let resource: Record<string, unknown> = {};
  if (from === "params") resource = paramAttributes(match.params);
  else if (from === "body") resource = request.body ?? {};
  else if (from === "resolver") {
    if (request.resource === undefined) return { status: 404, reason: "RESOURCE_NOT_FOUND", ruleId: null, endpointId, resource: {}, fields: [] };
    resource = request.resource;
  }
  const fields = spec.fields === "body" ? Object.keys(request.body ?? {}) : [];
  return outcome(decideEndpoint(abilities, principal, spec, resource, fields), resource, fields);
}

/**
 * A `params` endpoint's resource: its path parameters, percent-decoded. The gateway's canonical paths
 * always decode; a path stated in a test or a replayed row that does not is kept as written.
 */
export function paramAttributes(params: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => {
      try {
        return [k, decodeURIComponent(v)];
      } catch {
        return [k, v];
      }
    }),
  );
}
