import { createMongoAbility, type MongoAbility, type MongoQuery, type RawRuleOf } from "@casl/ability";
import { compileConditions, interpolateConditions, type Conditions, type PrincipalAttributes } from "./conditions.ts";
import type { RawPolicyRule } from "./policySet.ts";

export type PolicyAbility = MongoAbility;

/** Compiled abilities remember which policy rule each CASL rule came from, for decision reasons. */
const ruleIds = new WeakMap<object, string>();

export function ruleIdOf(origin: object): string | null {
  return ruleIds.get(origin) ?? null;
}

function toCasl(rule: RawPolicyRule, conditions: Conditions | undefined): RawRuleOf<PolicyAbility> {
  const raw: RawRuleOf<PolicyAbility> = { action: rule.action, subject: rule.subject };
  if (rule.fields !== undefined) raw.fields = rule.fields;
  if (conditions !== undefined) raw.conditions = conditions as MongoQuery;
  if (rule.inverted === true) raw.inverted = true;
  return raw;
}

/**
 * One ability per (role set, policy version). Conditions keep their `${principal.*}` placeholders;
 * the matcher resolves them from the subject at check time, so nothing is compiled per request.
 */
/**
 * CASL gives later rules precedence; putting every inverted rule last makes deny win over allow,
 * whatever the order of files or of a principal's roles. Upstreams get the same order.
 */
function denyLast(rules: readonly RawPolicyRule[]): RawPolicyRule[] {
  return [...rules.filter((r) => r.inverted !== true), ...rules.filter((r) => r.inverted === true)];
}

export function compileAbility(rules: readonly RawPolicyRule[]): PolicyAbility {
  const raw = denyLast(rules).map((rule) => {
    const casl = toCasl(rule, rule.conditions);
    ruleIds.set(casl, rule.id);
    return casl;
  });
  return createMongoAbility(raw, {
    conditionsMatcher: (conditions) => compileConditions(conditions as Conditions) as (object: unknown) => boolean,
  });
}

/** Rules with placeholders resolved for one principal: what an upstream may use to filter data. */
export function rulesForPrincipal(rules: readonly RawPolicyRule[], principal: PrincipalAttributes): RawRuleOf<PolicyAbility>[] {
  return denyLast(rules).flatMap((rule) => {
    if (rule.conditions === undefined) return [toCasl(rule, undefined)];
    const conditions = interpolateConditions(rule.conditions, principal);
    return conditions === null ? [] : [toCasl(rule, conditions)];
  });
}
