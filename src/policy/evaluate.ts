import { subject as asSubject } from "@casl/ability";
import { PRINCIPAL, type PrincipalAttributes } from "./conditions.ts";
import { ruleIdOf, type PolicyAbility } from "./compileAbility.ts";

/** Stable reason ids: part of the public contract (403 bodies, audit rows, README). */
export type DecisionReason =
  | "ALLOWED_BY_RULE"
  | "ENDPOINT_NOT_MAPPED"
  | "NO_MATCHING_RULE"
  | "CONDITIONS_NOT_MET"
  | "FIELD_NOT_PERMITTED"
  | "DENIED_BY_RULE"
  | "OUTSIDE_KEY_SCOPE"
  // Never the engine's own: the gateway's verdict when only roles withheld for want of a second factor would allow.
  | "SECOND_FACTOR_REQUIRED";

export interface Decision {
  allowed: boolean;
  reason: DecisionReason;
  ruleId: string | null;
  field?: string;
}

export interface CheckInput {
  action: string;
  subject: string;
  /** Resource attributes; an empty object when the endpoint has none (conditions then fail). */
  resource: Record<string, unknown>;
  fields?: readonly string[];
  principal: PrincipalAttributes;
}

/** Is there any rule that could allow this action on this type? Checked before resolving attributes. */
export function mayApply(ability: PolicyAbility, action: string, subjectType: string): boolean {
  return ability.can(action, subjectType);
}

export function evaluate(ability: PolicyAbility, input: CheckInput): Decision {
  const { action, fields = [], principal } = input;
  if (!ability.can(action, input.subject)) return { allowed: false, reason: "NO_MATCHING_RULE", ruleId: null };
  const object = asSubject(input.subject, { ...input.resource, [PRINCIPAL]: principal });
  const rule = ability.relevantRuleFor(action, object);
  if (rule === null) return { allowed: false, reason: "CONDITIONS_NOT_MET", ruleId: null };
  if (rule.inverted) return { allowed: false, reason: "DENIED_BY_RULE", ruleId: ruleIdOf(rule.origin) };
  for (const field of fields) {
    const fieldRule = ability.relevantRuleFor(action, object, field);
    if (fieldRule === null || fieldRule.inverted) {
      return { allowed: false, reason: "FIELD_NOT_PERMITTED", ruleId: fieldRule === null ? null : ruleIdOf(fieldRule.origin), field };
    }
  }
  return { allowed: true, reason: "ALLOWED_BY_RULE", ruleId: ruleIdOf(rule.origin) };
}

/**
 * A listing (`resource: { from: filter }`): may the caller act on some records of the type? Which
 * ones is the upstream's to select, with the assertion's rules (gerbang/upstream `filter()`), which
 * are these rules — so the gateway never lets through a list it would refuse record by record.
 * Conditional deny rules do not decide here (they narrow the filter); an unconditional one does.
 */
export function evaluateType(ability: PolicyAbility, action: string, subjectType: string): Decision {
  const rule = ability.relevantRuleFor(action, subjectType);
  if (rule === null) return { allowed: false, reason: "NO_MATCHING_RULE", ruleId: null };
  if (rule.inverted) return { allowed: false, reason: "DENIED_BY_RULE", ruleId: ruleIdOf(rule.origin) };
  return { allowed: true, reason: "ALLOWED_BY_RULE", ruleId: ruleIdOf(rule.origin) };
}

/**
 * An API key may do what its owner's roles allow and its scopes allow, nothing more: both abilities
 * decide, fields included. `scope` null means the principal is not a key. `listing`: decide on the
 * type (a `filter` endpoint), see evaluateType.
 */
export function evaluateWithin(ability: PolicyAbility, scope: PolicyAbility | null, input: CheckInput, listing = false): Decision {
  const decision = listing ? evaluateType(ability, input.action, input.subject) : evaluate(ability, input);
  if (!decision.allowed || scope === null) return decision;
  const scoped = listing ? evaluateType(scope, input.action, input.subject) : evaluate(scope, input);
  if (scoped.allowed) return decision;
  return { allowed: false, reason: "OUTSIDE_KEY_SCOPE", ruleId: null, ...(scoped.field === undefined ? {} : { field: scoped.field }) };
}
