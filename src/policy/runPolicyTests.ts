import { AbilityCache } from "./abilityCache.ts";
import { evaluateWithin } from "./evaluate.ts";
import { decideRequest, type RequestOutcome } from "./decideRequest.ts";
import type { PrincipalAttributes } from "./conditions.ts";
import type { PolicySet } from "./policySet.ts";
import type { TestPrincipal } from "./schema.ts";

export interface PolicyTestResult {
  file: string;
  /** The case's name; for a request case, `<name> as <principal>` (one result per principal). */
  name: string;
  passed: boolean;
  /** `allow`/`deny` for a rule case; `403 CONDITIONS_NOT_MET rule x` (as much as was stated) for a request case. */
  expected: string;
  actual: string;
  reason: string;
  ruleId: string | null;
}

/** Runs a version's tests/*.yaml cases (Cerbos-style policy tests) against its compiled abilities. */
export function runPolicyTests(policy: PolicySet, cache: AbilityCache = new AbilityCache(policy)): PolicyTestResult[] {
  const ruleCases = policy.tests.map((test): PolicyTestResult => {
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
  const requestCases = policy.requestTests.flatMap((test) =>
    test.cells.map(({ principal, as, expect }): PolicyTestResult => {
      const got = decideRequest(cache, requestPrincipal(as), { ...test.request, ...(test.resource === undefined ? {} : { resource: test.resource }) });
      const passed = got.status === expect.status && (expect.reason === undefined || expect.reason === got.reason) && (expect.rule === undefined || expect.rule === got.ruleId);
      return {
        file: test.file,
        name: `${test.name} as ${principal}`,
        passed,
        expected: [String(expect.status), expect.reason, expect.rule === undefined ? undefined : `rule ${expect.rule}`].filter(Boolean).join(" "),
        actual: describeOutcome(got),
        reason: got.reason,
        ruleId: got.ruleId,
      };
    }),
  );
  return [...ruleCases, ...requestCases];
}

export function requestPrincipal(as: TestPrincipal): { roles: readonly string[]; attributes: PrincipalAttributes; scopes: readonly string[] | null; anonymous: boolean } {
  return {
    roles: as.roles,
    attributes: (as.attributes ?? {}) as PrincipalAttributes,
    scopes: as.scopes ?? null,
    anonymous: as.roles.length === 1 && as.roles[0] === "anonymous",
  };
}

export function describeOutcome(got: RequestOutcome): string {
  return `${got.status} ${got.reason}${got.ruleId === null ? "" : ` rule ${got.ruleId}`}${got.endpointId === null ? "" : ` (endpoint ${got.endpointId})`}`;
}

export interface Coverage {
  /** Endpoint × role cells in the version: every endpoint id with every role (anonymous included). */
  cells: number;
  covered: number;
  missing: Array<{ endpoint: string; role: string }>;
}

/**
 * Which endpoint × role cells the request cases decide: a cell is covered when a case whose request
 * the endpoint matches names a principal holding exactly that role (no scopes: a key is a cell of its own).
 */
export function endpointCoverage(policy: PolicySet): Coverage {
  const roles = [...policy.rulesByRole.keys()].sort();
  const endpoints = policy.matcher.endpointIds();
  const seen = new Set<string>();
  for (const test of policy.requestTests) {
    const match = policy.matcher.match(test.request.method, test.request.path);
    if (match === null) continue;
    for (const cell of test.cells) {
      const [role] = cell.as.roles;
      if (cell.as.roles.length === 1 && role !== undefined && cell.as.scopes === undefined) seen.add(`${match.endpoint.spec.id} ${role}`);
    }
  }
  const missing = endpoints.flatMap((endpoint) => roles.filter((role) => !seen.has(`${endpoint} ${role}`)).map((role) => ({ endpoint, role })));
  const cells = endpoints.length * roles.length;
  return { cells, covered: cells - missing.length, missing };
}
