import t from "tap";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { PolicyError } from "../../src/policy/policySet.ts";

const example = fileURLToPath(new URL("../../policies/2026-11-26", import.meta.url));

/** A copy of the example version with one file replaced or edited. */
function variant(t: { teardown(fn: () => void): void }, edit: (dir: string) => void): string {
  const root = mkdtempSync(join(tmpdir(), "gerbang-policy-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "2026-11-26");
  cpSync(example, dir, { recursive: true });
  edit(dir);
  return dir;
}

function problemsOf(dir: string): PolicyError["problems"] {
  try {
    loadPolicySet(dir);
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
  return [];
}

t.test("the example loads", async (t) => {
  const policy = loadPolicySet(example);
  t.equal(policy.version, "2026-11-26");
  t.same([...policy.rulesByRole.keys()].sort(), ["admin", "anonymous", "sales", "user"]);
});

const cases: Array<[string, (dir: string) => void, { file: RegExp; path: RegExp; reason: RegExp }]> = [
  ["YAML syntax error", (d) => writeFileSync(join(d, "roles/user.yaml"), "role: user\nrules: [\n"), { file: /roles\/user\.yaml/, path: /^$/, reason: /not valid YAML/ }],
  ["unknown rule field", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrules:\n  - id: a\n    action: read\n    subject: X\n    effect: allow\n"), { file: /roles\/admin\.yaml/, path: /^\/rules\/0/, reason: /additional|schema/ }],
  ["unknown placeholder attribute", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrules:\n  - id: a\n    action: read\n    subject: X\n    conditions: { ownerId: '${principal.tenant}' }\n"), { file: /roles\/admin\.yaml/, path: /\/rules\/0\/conditions\/ownerId/, reason: /unknown principal attribute tenant/ }],
  ["unsupported operator", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrules:\n  - id: a\n    action: read\n    subject: X\n    conditions: { name: { $regex: '.*' } }\n"), { file: /roles\/admin\.yaml/, path: /\$regex/, reason: /not supported/ }],
  ["placeholder in an inverted rule", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrules:\n  - id: a\n    action: read\n    subject: X\n    inverted: true\n    conditions: { ownerId: '${principal.id}' }\n"), { file: /roles\/admin\.yaml/, path: /conditions/, reason: /inverted rules/ }],
  ["duplicate rule id", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrules:\n  - id: user.products.read\n    action: read\n    subject: X\n"), { file: /roles\/(admin|user)\.yaml/, path: /\/rules\/0\/id/, reason: /duplicate rule id user\.products\.read/ }],
  ["resolver without id", (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - id: x\n    methods: [GET]\n    path: /api/x/:xId\n    action: read\n    subject: X\n    resource: { from: resolver }\n"), { file: /endpoints\/extra\.yaml/, path: /resource\/id/, reason: /needs the path parameter/ }],
  ["resource id not a parameter", (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - id: x\n    methods: [GET]\n    path: /api/x/:xId\n    action: read\n    subject: X\n    resource: { from: resolver, id: yId }\n"), { file: /endpoints\/extra\.yaml/, path: /resource\/id/, reason: /not a parameter/ }],
  ["overlapping endpoints", (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - id: x\n    methods: [GET]\n    path: /api/products/:other\n    action: read\n    subject: X\n"), { file: /endpoints\/(extra|marketplace)\.yaml/, path: /path/, reason: /overlaps endpoint (products\.get|x)/ }],
  ["non-canonical literal", (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - id: x\n    methods: [GET]\n    path: /api/../admin\n    action: read\n    subject: X\n"), { file: /endpoints\/extra\.yaml/, path: /path/, reason: /not a canonical literal/ }],
  ["** not last", (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - id: x\n    methods: [GET]\n    path: /api/**/x\n    action: read\n    subject: X\n"), { file: /endpoints\/extra\.yaml/, path: /path/, reason: /last segment/ }],
  ["bad method", (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - id: x\n    methods: [FETCH]\n    path: /api/x\n    action: read\n    subject: X\n"), { file: /endpoints\/extra\.yaml/, path: /methods/, reason: /./ }],
  ["manifest version differs from folder", (d) => writeFileSync(join(d, "manifest.yaml"), readFileSync(join(d, "manifest.yaml"), "utf8").replace('version: "2026-11-26"', 'version: "2099-01-01"')), { file: /manifest\.yaml/, path: /\/version/, reason: /folder name/ }],
  ["duplicate YAML keys", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrole: user\nrules: []\n"), { file: /roles\/admin\.yaml/, path: /^$/, reason: /not valid YAML/ }],
  ["scope with a deny rule", (d) => writeFileSync(join(d, "scopes.yaml"), "scopes:\n  - id: 'catalog:read'\n    rules:\n      - id: s1\n        action: read\n        subject: Product\n        inverted: true\n"), { file: /scopes\.yaml/, path: /\/scopes\/0\/rules\/0\/inverted/, reason: /allow rules only/ }],
  ["scope defined twice", (d) => writeFileSync(join(d, "scopes.yaml"), "scopes:\n  - id: 'a:read'\n    rules: [{ id: s1, action: read, subject: A }]\n  - id: 'a:read'\n    rules: [{ id: s2, action: read, subject: A }]\n"), { file: /scopes\.yaml/, path: /\/scopes\/1\/id/, reason: /defined twice/ }],
  ["scope id not in the scope form", (d) => writeFileSync(join(d, "scopes.yaml"), "scopes:\n  - id: 'Catalog Read'\n    rules: [{ id: s1, action: read, subject: A }]\n"), { file: /scopes\.yaml/, path: /\/scopes\/0\/id/, reason: /./ }],
  ["test names an unknown scope", (d) => writeFileSync(join(d, "tests/scope_test.yaml"), "tests:\n  - name: ghost\n    principal: { roles: [user], scopes: ['ghost:read'] }\n    action: read\n    subject: Product\n    expect: deny\n"), { file: /tests\/scope_test\.yaml/, path: /^$/, reason: /unknown scope ghost:read/ }],
  ["bad test file", (d) => writeFileSync(join(d, "tests/bad_test.yaml"), "tests:\n  - name: x\n    expect: maybe\n"), { file: /tests\/bad_test\.yaml/, path: /./, reason: /./ }],
];

for (const [name, edit, expected] of cases) {
  t.test(`refused: ${name}`, async (t) => {
    const problems = problemsOf(variant(t, edit));
    t.ok(problems.length > 0, "the set is refused");
    const match = problems.find((p) => expected.file.test(p.file) && expected.path.test(p.path) && expected.reason.test(p.reason));
    t.ok(match, `a problem names the file, path and reason: ${JSON.stringify(problems)}`);
  });
}

t.test("a missing version folder is refused", async (t) => {
  t.throws(() => loadPolicySet(join(tmpdir(), "no-such-policy-version")), PolicyError);
});

t.test("the 2026-11-27 example declares the partner role and the key scopes", async (t) => {
  const policy = loadPolicySet(fileURLToPath(new URL("../../policies/2026-11-27", import.meta.url)));
  t.same([...policy.rulesByRole.keys()].sort(), ["admin", "anonymous", "partner", "sales", "user"]);
  t.same([...policy.scopes.keys()].sort(), ["catalog:read", "inventory:read"]);
  t.same(policy.scopes.get("catalog:read")?.rules.map((r) => [r.action, r.subject, r.role]), [["read", "Product", "scope:catalog:read"]]);
});
