import { subject as asSubject } from "@casl/ability";
import type { AbilityCache } from "./abilityCache.ts";
import { explainConditions, PRINCIPAL, type ConditionCheck } from "./conditions.ts";
import { ruleIdOf, type PolicyAbility } from "./compileAbility.ts";
import { blockedFields, decideRequest, type RequestOutcome, type RequestPrincipal, type StatedRequest } from "./decideRequest.ts";
import type { RawPolicyRule } from "./policySet.ts";

/** One rule that applies to the endpoint's action and subject, as the decision weighed it. */
export interface RuleTrace {
  id: string;
  /** The role (or `scope:<id>`) the rule belongs to. */
  role: string;
  effect: "allow" | "deny";
  /** Each condition operator with the values used; empty for a rule without conditions. */
  conditions: ConditionCheck[];
  conditionsMet: boolean;
  /** The fields the rule is limited to; null: every field. */
  fields: string[] | null;
  /** Fields of the request this rule does not cover. */
  uncoveredFields: string[];
  /** This rule decided the request (allow, deny, or the field denial). */
  decided: boolean;
  description?: string;
}

export interface Explanation {
  version: string;
  request: { method: string; path: string };
  principal: { roles: readonly string[]; attributes: Record<string, unknown>; scopes: readonly string[] | null };
  endpoint: { id: string; action: string; subject: string; resourceFrom: string; fieldsFromBody: boolean } | null;
  outcome: RequestOutcome;
  /** The role set's rules for this action and subject, in the order they take precedence (first wins). */
  rules: RuleTrace[];
  /** For an API key: its scopes' rules, which must allow it as well. */
  scopeRules: RuleTrace[] | null;
  /** Rules of the role set that do not apply to this action and subject. */
  otherRules: string[];
  /** Every requested field no rule allows (not only the first, which the 403 names). */
  blockedFields: string[];
}

/**
 * Why a request is allowed or denied: the same decision as the gateway's (decideRequest), then each
 * rule CASL considered for it, with the condition values used. For the CLI, the admin API and the
 * playground; it is computed on request, never on the hot path.
 */
export function explainRequest(abilities: AbilityCache, principal: RequestPrincipal, request: StatedRequest): Explanation {
  const outcome = decideRequest(abilities, principal, request);
  const match = abilities.policy.matcher.match(request.method.toUpperCase(), request.path.split("?")[0] ?? request.path);
  const spec = match?.endpoint.spec;
  const base = {
    version: abilities.policy.version,
    request: { method: request.method.toUpperCase(), path: request.path },
    principal: { roles: principal.roles, attributes: { ...principal.attributes }, scopes: principal.scopes },
    outcome,
  };
  const roleSet = abilities.get(principal.roles);
  if (spec === undefined) {
    return { ...base, endpoint: null, rules: [], scopeRules: null, otherRules: roleSet.rules.map((r) => r.id), blockedFields: [] };
  }
  const trace = (ability: PolicyAbility, raw: readonly RawPolicyRule[]): RuleTrace[] => {
    const byId = new Map(raw.map((r) => [r.id, r]));
    // A listing is decided on the type (its conditions narrow the upstream's filter, they are not "unmet").
    const object = spec.resource?.from === "filter" ? spec.subject : asSubject(spec.subject, { ...outcome.resource, [PRINCIPAL]: principal.attributes });
    return ability.possibleRulesFor(spec.action, spec.subject).map((rule) => {
      const id = ruleIdOf(rule.origin) ?? "";
      const source = byId.get(id);
      const conditions = source?.conditions === undefined ? [] : explainConditions(source.conditions, outcome.resource, principal.attributes);
      return {
        id,
        role: source?.role ?? "",
        effect: rule.inverted ? "deny" : "allow",
        conditions,
        conditionsMet: rule.matchesConditions(object),
        fields: source?.fields === undefined ? null : [...source.fields],
        uncoveredFields: outcome.fields.filter((f) => !rule.matchesField(f)),
        decided: id === outcome.ruleId,
        ...(source?.description === undefined ? {} : { description: source.description }),
      } satisfies RuleTrace;
    });
  };
  const rules = trace(roleSet.ability, roleSet.rules);
  const considered = new Set(rules.map((r) => r.id));
  const scoped = principal.scopes === null ? null : abilities.forScopes(principal.scopes);
  // Only a decision that got as far as the fields has blocked ones (a failed condition blocks them all alike).
  const blocked = outcome.reason === "FIELD_NOT_PERMITTED" || (outcome.reason === "OUTSIDE_KEY_SCOPE" && outcome.field !== undefined) ? blockedFields(abilities, principal, spec, outcome.resource, outcome.fields) : [];
  return {
    ...base,
    endpoint: { id: spec.id, action: spec.action, subject: spec.subject, resourceFrom: spec.resource?.from ?? "none", fieldsFromBody: spec.fields === "body" },
    rules,
    scopeRules: scoped === null ? null : trace(scoped.ability, scoped.rules),
    otherRules: roleSet.rules.map((r) => r.id).filter((id) => !considered.has(id)),
    blockedFields: blocked,
  };
}

const show = (value: unknown): string => (value === undefined ? "(missing)" : JSON.stringify(value));

/** The explanation as the CLI prints it: every value shown as data, nothing interpreted. */
export function formatExplanation(e: Explanation): string {
  const lines: string[] = [];
  const o = e.outcome;
  lines.push(`version ${e.version}; roles ${e.principal.roles.join(", ") || "(none)"}; attributes ${show(e.principal.attributes)}${e.principal.scopes === null ? "" : `; API key scopes ${e.principal.scopes.join(", ")}`}`);
  if (e.endpoint === null) {
    lines.push(`${e.request.method} ${e.request.path}: no endpoint matches`);
  } else {
    lines.push(`${e.request.method} ${e.request.path} -> endpoint ${e.endpoint.id}: ${e.endpoint.action} ${e.endpoint.subject} (resource from ${e.endpoint.resourceFrom}${e.endpoint.fieldsFromBody ? ", body keys are fields" : ""})`);
    lines.push(`resource ${show(o.resource)}${o.fields.length === 0 ? "" : `; fields ${o.fields.join(", ")}`}`);
  }
  lines.push(`decision: ${o.status === 200 ? "allow (forwarded)" : "deny"} ${o.status} ${o.reason}${o.ruleId === null ? "" : ` by rule ${o.ruleId}`}${e.blockedFields.length === 0 ? "" : `; blocked fields: ${e.blockedFields.join(", ")}`}`);
  const section = (title: string, rules: RuleTrace[]): void => {
    lines.push(rules.length === 0 ? `${title}: none` : `${title} (first that matches decides):`);
    for (const r of rules) {
      const verdict = r.decided ? "DECIDED" : !r.conditionsMet ? "conditions not met" : r.uncoveredFields.length > 0 ? `does not cover ${r.uncoveredFields.join(", ")}` : "matches";
      lines.push(`  ${r.decided ? "*" : "-"} ${r.id} [${r.role}] ${r.effect}${r.fields === null ? "" : ` fields ${r.fields.join(", ")}`}: ${verdict}`);
      for (const c of r.conditions) {
        const expected = show(c.expected);
        const written = show(c.written);
        lines.push(`      ${c.met ? "ok  " : "FAIL"} ${c.attribute} ${c.operator} ${written}${written === expected ? "" : ` = ${expected}`}; resource has ${show(c.actual)}`);
      }
    }
  };
  if (e.endpoint !== null) {
    section(`rules for ${e.endpoint.action} ${e.endpoint.subject}`, e.rules);
    if (e.scopeRules !== null) section("the key's scope rules (must allow it too)", e.scopeRules);
  }
  if (e.otherRules.length > 0) lines.push(`other rules of these roles (do not apply): ${e.otherRules.join(", ")}`);
  return `${lines.join("\n")}\n`;
}
