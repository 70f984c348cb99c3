import { AbilityCache } from "./abilityCache.ts";
import { evaluateWithin } from "./evaluate.ts";
import type { PrincipalAttributes } from "./conditions.ts";
import type { PolicySet } from "./policySet.ts";

export interface PolicyTestResult {
  file: string;
  name: string;
  passed: boolean;
  expected: "allow" | "deny";
  actual: "allow" | "deny";
  reason: string;
  ruleId: string | null;
}

/** Runs a version's tests/*.yaml cases (Cerbos-style policy tests) against its compiled abilities. */
export function runPolicyTests(policy: PolicySet): PolicyTestResult[] {
  const cache = new AbilityCache(policy);
  return policy.tests.map((test) => {
    const scopes = test.principal.scopes;
    const decision = evaluateWithin(cache.get(test.principal.roles).ability, scopes === undefined ? null : cache.forScopes(scopes).ability, {
      action: test.action,
      subject: test.subject,
      resource: test.resource ?? {},
      fields: test.fields ?? [],
      principal: (test.principal.attributes ?? {}) as PrincipalAttributes,
    });
    const actual = decision.allowed ? "allow" : "deny";
    const reasonOk = test.reason === undefined || test.reason === decision.reason;
    return { file: test.file, name: test.name, passed: actual === test.expect && reasonOk, expected: test.expect, actual, reason: decision.reason, ruleId: decision.ruleId };
  });
}
