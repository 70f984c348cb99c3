// The policy tests of a version (tests/*_test.yaml) as `gerbang policy validate` reports them: each
// passes only when the decision and, where the test names one, the reason are the expected ones, and a
// failing test shows what the policy decided instead.
import t from "tap";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { runPolicyTests } from "../../src/policy/runPolicyTests.ts";

const ROLE = `role: user
rules:
  - { id: user.products.read, action: read, subject: Product }
  - { id: user.products.update, action: update, subject: Product, fields: [name], conditions: { ownerId: '\${principal.id}' } }
  - { id: user.orders.read, action: read, subject: Order }
`;

/** The results of one version whose only tests file holds `tests` (YAML list entries). */
function results(t: { teardown(fn: () => void): void }, tests: string): ReturnType<typeof runPolicyTests> {
  const root = mkdtempSync(join(tmpdir(), "gerbang-policy-tests-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "v1");
  for (const sub of ["roles", "endpoints", "tests"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "manifest.yaml"), 'version: "v1"\nsummary: x\ncreated: "2026-01-01T00:00:00Z"\n');
  writeFileSync(join(dir, "roles/user.yaml"), ROLE);
  writeFileSync(join(dir, "endpoints/api.yaml"), "endpoints:\n  - { id: p, methods: [GET], path: /api/p, action: read, subject: Product }\n");
  writeFileSync(join(dir, "scopes.yaml"), "scopes:\n  - { id: 'catalog:read', rules: [{ id: scope.read, action: read, subject: Product }] }\n");
  writeFileSync(join(dir, "tests/t_test.yaml"), `tests:\n${tests}`);
  return runPolicyTests(loadPolicySet(dir));
}

t.test("a test that expects what the policy decides passes, naming the deciding rule", async (t) => {
  t.same(results(t, "  - { name: reads, principal: { roles: [user] }, action: read, subject: Product, expect: allow }\n"), [
    { file: "v1/tests/t_test.yaml", name: "reads", passed: true, expected: "allow", actual: "allow", reason: "ALLOWED_BY_RULE", ruleId: "user.products.read" },
  ]);
});

t.test("a test expecting allow where the policy denies fails and shows the denial", async (t) => {
  t.same(results(t, "  - { name: deletes, principal: { roles: [user] }, action: delete, subject: Product, expect: allow }\n"), [
    { file: "v1/tests/t_test.yaml", name: "deletes", passed: false, expected: "allow", actual: "deny", reason: "NO_MATCHING_RULE", ruleId: null },
  ]);
});

t.test("a test with the right decision but another reason fails", async (t) => {
  const [result] = results(t, "  - { name: deletes, principal: { roles: [user] }, action: delete, subject: Product, expect: deny, reason: DENIED_BY_RULE }\n");
  t.match(result, { passed: false, expected: "deny", actual: "deny", reason: "NO_MATCHING_RULE" });
});

t.test("a test naming the reason the policy gives passes", async (t) => {
  const [result] = results(t, "  - { name: deletes, principal: { roles: [user] }, action: delete, subject: Product, expect: deny, reason: NO_MATCHING_RULE }\n");
  t.match(result, { passed: true, actual: "deny" });
});

t.test("a test without fields is judged on the action alone; with fields, on each field", async (t) => {
  const tests = [
    "  - { name: renames, principal: { roles: [user], attributes: { id: u1 } }, action: update, subject: Product, resource: { ownerId: u1 }, expect: allow }",
    "  - { name: reprices, principal: { roles: [user], attributes: { id: u1 } }, action: update, subject: Product, resource: { ownerId: u1 }, fields: [price], expect: deny, reason: FIELD_NOT_PERMITTED }",
    "  - { name: someone else's, principal: { roles: [user], attributes: { id: u2 } }, action: update, subject: Product, resource: { ownerId: u1 }, expect: deny, reason: CONDITIONS_NOT_MET }",
    "  - { name: no attributes, principal: { roles: [user] }, action: update, subject: Product, resource: { ownerId: u1 }, expect: deny, reason: CONDITIONS_NOT_MET }",
    "  - { name: no resource, principal: { roles: [user], attributes: { id: u1 } }, action: update, subject: Product, expect: deny, reason: CONDITIONS_NOT_MET }",
  ].join("\n");
  t.same(results(t, `${tests}\n`).map((r) => [r.name, r.passed, r.reason]), [
    ["renames", true, "ALLOWED_BY_RULE"],
    ["reprices", true, "FIELD_NOT_PERMITTED"],
    ["someone else's", true, "CONDITIONS_NOT_MET"],
    ["no attributes", true, "CONDITIONS_NOT_MET"],
    ["no resource", true, "CONDITIONS_NOT_MET"],
  ]);
});

t.test("a test principal with scopes is judged as an API key limited to them", async (t) => {
  const tests = [
    "  - { name: key reads products, principal: { roles: [user], scopes: ['catalog:read'] }, action: read, subject: Product, expect: allow }",
    "  - { name: key reads orders, principal: { roles: [user], scopes: ['catalog:read'] }, action: read, subject: Order, expect: deny, reason: OUTSIDE_KEY_SCOPE }",
    "  - { name: session reads orders, principal: { roles: [user] }, action: read, subject: Order, expect: allow }",
  ].join("\n");
  t.same(results(t, `${tests}\n`).map((r) => [r.name, r.passed, r.reason]), [
    ["key reads products", true, "ALLOWED_BY_RULE"],
    ["key reads orders", true, "OUTSIDE_KEY_SCOPE"],
    ["session reads orders", true, "ALLOWED_BY_RULE"],
  ]);
});
