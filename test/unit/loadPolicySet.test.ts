import t from "tap";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { listPolicyVersions, loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { PolicyError } from "../../src/policy/policySet.ts";

const example = fileURLToPath(new URL("../../policies/2026-11-26", import.meta.url));

/** A copy of the example version with one file replaced or edited. */
function variant(t: { teardown(fn: () => void): void }, edit: (dir: string) => void): string {
  const root = mkdtempSync(join(tmpdir(), "gerbang-policy-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "2026-11-26");
  cpSync(example, dir, { recursive: true });
  // These cases are about files, ids and patterns; subjects.yaml's checks are test/unit/policyProblems.test.ts's.
  rmSync(join(dir, "subjects.yaml"));
  edit(dir);
  return dir;
}

/** The problems without their line numbers (test/unit/policyProblems.test.ts checks those). */
function problemsOf(dir: string): PolicyError["problems"] {
  try {
    loadPolicySet(dir);
  } catch (error) {
    if (error instanceof PolicyError) return error.problems.map(({ line: _line, ...p }) => p);
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
  ["unknown rule field", (d) => writeFileSync(join(d, "roles/admin.yaml"), "role: admin\nrules:\n  - id: a\n    action: read\n    subject: X\n    effect: allow\n"), { file: /roles\/admin\.yaml/, path: /^\/rules\/0$/, reason: /^unknown property "effect"/ }],
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
  ["test names an unknown scope", (d) => writeFileSync(join(d, "tests/scope_test.yaml"), "tests:\n  - name: ghost\n    principal: { roles: [user], scopes: ['ghost:read'] }\n    action: read\n    subject: Product\n    expect: deny\n"), { file: /tests\/scope_test\.yaml/, path: /^\/tests\/0\/principal\/scopes\/0$/, reason: /unknown scope ghost:read/ }],
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

t.test("look-alike policy files are refused rather than skipped", async (t) => {
  const dir = variant(t, (d) => {
    for (const name of ["extra.yml", "extra.json", "Extra.YAML"]) writeFileSync(join(d, "roles", name), readFileSync(join(d, "roles/user.yaml")));
  });
  const refused = problemsOf(dir).sort((a, b) => (a.file < b.file ? -1 : 1));
  t.same(refused, ["Extra.YAML", "extra.json", "extra.yml"].map((name) => ({ file: `2026-11-26/roles/${name}`, path: "", reason: "policy files must end in .yaml" })));
});

t.test("other files beside the policy files are ignored", async (t) => {
  const dir = variant(t, (d) => {
    writeFileSync(join(d, "roles/README.md"), "# Roles\nnot: [yaml\n");
    writeFileSync(join(d, "endpoints/notes.txt"), "endpoints: 5\n");
    writeFileSync(join(d, "roles/user.yaml.bak"), "role: [\n");
    writeFileSync(join(d, "endpoints/schema.json.orig"), "{");
  });
  t.equal(loadPolicySet(dir).version, "2026-11-26");
});

t.test("a folder named like a policy file is refused as not a regular file", async (t) => {
  const dir = variant(t, (d) => mkdirSync(join(d, "roles/extra.yaml")));
  t.same(problemsOf(dir), [{ file: "2026-11-26/roles/extra.yaml", path: "", reason: "not a regular file" }]);
});

t.test("a YAML syntax error is shown on one line", async (t) => {
  const [problem] = problemsOf(variant(t, (d) => writeFileSync(join(d, "roles/user.yaml"), "role: user\nrules: [\n")));
  t.match(problem, { file: "2026-11-26/roles/user.yaml", path: "", reason: /^not valid YAML: [^\n]+\]$/ });
});

t.test("a role defined in two files is refused in the later file", async (t) => {
  const dir = variant(t, (d) => writeFileSync(join(d, "roles/zz_more_users.yaml"), "role: user\nrules: []\n"));
  t.same(problemsOf(dir), [{ file: "2026-11-26/roles/zz_more_users.yaml", path: "/role", reason: "role user is defined twice" }]);
});

t.test("a duplicate rule id is reported in the file that comes later by name", async (t) => {
  const dir = variant(t, (d) => {
    for (const name of ["m1", "a1", "z1", "b1"]) writeFileSync(join(d, `roles/${name}.yaml`), `role: ${name}\nrules: [{ id: shared, action: read, subject: X }]\n`);
  });
  t.same(problemsOf(dir).map((p) => p.file), ["2026-11-26/roles/b1.yaml", "2026-11-26/roles/m1.yaml", "2026-11-26/roles/z1.yaml"]);
});

t.test("a version folder given with a trailing slash loads", async (t) => {
  t.equal(loadPolicySet(`${example}/`).version, "2026-11-26");
});

t.test("a duplicate endpoint id is refused", async (t) => {
  const dir = variant(t, (d) => writeFileSync(join(d, "endpoints/zz_extra.yaml"), "endpoints:\n  - { id: products.list, methods: [GET], path: /api/other, action: read, subject: X }\n"));
  t.same(problemsOf(dir), [{ file: "2026-11-26/endpoints/zz_extra.yaml", path: "/endpoints/0/id", reason: "duplicate endpoint id products.list" }]);
});

t.test("endpoints of the same shape overlap when their methods meet", async (t) => {
  const extra = (methods: string, path = "/api/products/:other"): string => `endpoints:\n  - { id: x, methods: ${methods}, path: ${path}, action: read, subject: X }\n`;
  const overlap = [{ file: "2026-11-26/endpoints/zz_extra.yaml", path: "/endpoints/0/path", reason: "overlaps endpoint products.get for the same methods" }];
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "endpoints/zz_extra.yaml"), extra("[POST, GET]")))), overlap, "one shared method is enough");
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "endpoints/zz_extra.yaml"), extra("['*']")))), overlap, "* meets every method");
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "endpoints/zz_extra.yaml"), extra("[OPTIONS]")))), [], "different methods on one shape are fine");
  const star = "endpoints:\n  - { id: x, methods: ['*'], path: /api/x/:a, action: read, subject: X }\n  - { id: y, methods: [GET], path: /api/x/:b, action: read, subject: X }\n";
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "endpoints/extra.yaml"), star))), [{ file: "2026-11-26/endpoints/extra.yaml", path: "/endpoints/1/path", reason: "overlaps endpoint x for the same methods" }], "an earlier * meets every method");
});

t.test("endpoints overlap only when every segment has the same shape", async (t) => {
  const pair = (a: string, b: string): string => `endpoints:\n  - { id: x, methods: [GET], path: ${a}, action: read, subject: X }\n  - { id: y, methods: [GET], path: ${b}, action: read, subject: X }\n`;
  const load = (a: string, b: string): string[] => problemsOf(variant(t, (d) => writeFileSync(join(d, "endpoints/extra.yaml"), pair(a, b)))).map((p) => p.reason);
  t.same(load("/api/x/:a/y", "/api/x/:b/y"), ["overlaps endpoint x for the same methods"], "parameters of different names");
  t.same(load("/api/x/a", "/api/x/b"), [], "different literals");
  t.same(load("/api/x/:a", "/api/x/a"), [], "a literal beside a parameter (the literal is more specific)");
  t.same(load("/api/x/a", "/api/x/:a"), [], "a parameter beside a literal");
  t.same(load("/api/x", "/api/x/**"), [], "a fixed path beside its subtree");
  t.same(load("/api/x", "/api/x/y"), [], "different lengths");
});

t.test("case-insensitive paths: literals compare without case", async (t) => {
  const dir = variant(t, (d) => writeFileSync(join(d, "endpoints/extra.yaml"), "endpoints:\n  - { id: x, methods: [GET], path: /api/Reports, action: read, subject: X }\n"));
  t.equal(loadPolicySet(dir, { caseInsensitivePaths: true }).matcher.match("GET", "/api/reports")?.endpoint.spec.id, "x");
  t.equal(loadPolicySet(dir).matcher.match("GET", "/api/reports"), null);
  t.equal(loadPolicySet(dir, { caseInsensitivePaths: false }).matcher.match("GET", "/api/Reports")?.endpoint.spec.id, "x");
});

t.test("scope rules are checked like role rules", async (t) => {
  const scopes = "scopes:\n  - id: 'a:read'\n    rules:\n      - { id: user.products.read, action: read, subject: A }\n      - { id: s2, action: read, subject: A, conditions: { region: '${principal.tenant}' } }\n";
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "scopes.yaml"), scopes))), [
    { file: "2026-11-26/scopes.yaml", path: "/scopes/0/rules/0/id", reason: "duplicate rule id user.products.read" },
    { file: "2026-11-26/scopes.yaml", path: "/scopes/0/rules/1/conditions/region", reason: "unknown principal attribute tenant (known: id, email, region)" },
  ]);
});

t.test("a scope keeps its description; one without has none", async (t) => {
  const scopes = "scopes:\n  - { id: 'a:read', description: Reads A, rules: [{ id: s1, action: read, subject: A }] }\n  - { id: 'b:read', rules: [{ id: s2, action: read, subject: B }] }\n";
  const policy = loadPolicySet(variant(t, (d) => writeFileSync(join(d, "scopes.yaml"), scopes)));
  t.strictSame(policy.scopes.get("a:read"), { description: "Reads A", rules: [{ id: "s1", action: "read", subject: "A", role: "scope:a:read" }] });
  t.strictSame(policy.scopes.get("b:read"), { rules: [{ id: "s2", action: "read", subject: "B", role: "scope:b:read" }] });
});

t.test("a deny rule without placeholders is accepted", async (t) => {
  const role = "role: admin\nrules:\n  - { id: a, action: delete, subject: X, inverted: true, conditions: { locked: true } }\n";
  t.same(loadPolicySet(variant(t, (d) => writeFileSync(join(d, "roles/admin.yaml"), role))).rulesByRole.get("admin"), [{ id: "a", action: "delete", subject: "X", inverted: true, conditions: { locked: true }, role: "admin" }]);
});

t.test("listing versions", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "gerbang-versions-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const folder = (name: string, manifest?: string): void => {
    mkdirSync(join(root, name));
    if (manifest !== undefined) writeFileSync(join(root, name, "manifest.yaml"), manifest);
  };
  folder("b", 'created: "2026-03-01T00:00:00Z"\n');
  folder("a", 'created: "2026-05-01T00:00:00Z"\n');
  folder("c", 'created: "2026-04-01T00:00:00Z"\n');
  folder("_draft", 'created: "2026-09-01T00:00:00Z"\n');
  folder("no-manifest");
  folder("empty-manifest", "");
  folder("broken", "created: [\n");
  folder("manifest-folder");
  mkdirSync(join(root, "manifest-folder", "manifest.yaml"));
  folder("fifo");
  execFileSync("mkfifo", [join(root, "fifo", "manifest.yaml")]);
  writeFileSync(join(root, "notes.yaml"), 'created: "2026-12-01T00:00:00Z"\n');

  t.same(listPolicyVersions(root), [
    { version: "a", created: "2026-05-01T00:00:00Z", dir: join(root, "a") },
    { version: "c", created: "2026-04-01T00:00:00Z", dir: join(root, "c") },
    { version: "b", created: "2026-03-01T00:00:00Z", dir: join(root, "b") },
    { version: "empty-manifest", created: "", dir: join(root, "empty-manifest") },
  ], "newest first; drafts (_), plain files, folders without a readable manifest and special files are left out; an empty manifest is listed so that loading it says why");
});

t.test("listing versions of a missing folder says so", async (t) => {
  const root = join(tmpdir(), "no-such-policy-root");
  const error = t.throws(() => listPolicyVersions(root));
  t.ok(error instanceof PolicyError);
  t.same((error as PolicyError).problems, [{ file: root, path: "", reason: "policy folder not found" }]);
});

t.test("a version without an anonymous role file gives anonymous callers no rules", async (t) => {
  const policy = loadPolicySet(variant(t, (d) => rmSync(join(d, "roles/anonymous.yaml"))));
  t.strictSame(policy.rulesByRole.get("anonymous"), []);
});

t.test("an empty policy file is refused as not a mapping", async (t) => {
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "roles/admin.yaml"), ""))), [{ file: "2026-11-26/roles/admin.yaml", path: "/", reason: "must be a mapping" }]);
});

t.test("two scopes may not share a rule id", async (t) => {
  const scopes = "scopes:\n  - { id: 'a:read', rules: [{ id: s1, action: read, subject: A }] }\n  - { id: 'b:read', rules: [{ id: s1, action: read, subject: B }] }\n";
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "scopes.yaml"), scopes))), [{ file: "2026-11-26/scopes.yaml", path: "/scopes/1/rules/0/id", reason: "duplicate rule id s1" }]);
});

t.test("a version whose endpoint files list none is told it has no endpoints", async (t) => {
  const none = (d: string): void => {
    writeFileSync(join(d, "endpoints/marketplace.yaml"), "endpoints: []\n");
    writeFileSync(join(d, "endpoints/gateway.yaml"), "endpoints: []\n");
  };
  t.same(problemsOf(variant(t, none)), [{ file: "2026-11-26/endpoints", path: "", reason: "no endpoints defined" }]);
});

t.test("an endpoint file that cannot be parsed is not also reported as no endpoints", async (t) => {
  t.same(problemsOf(variant(t, (d) => writeFileSync(join(d, "endpoints/marketplace.yaml"), "endpoints: [\n"))).map((p) => p.reason), ["not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]"]);
});

t.test("with a scopes.yaml that cannot be parsed, the scopes named by tests are not judged", async (t) => {
  const problems = problemsOf(variant(t, (d) => {
    writeFileSync(join(d, "scopes.yaml"), "scopes: [\n");
    writeFileSync(join(d, "tests/scope_test.yaml"), "tests:\n  - { name: key, principal: { roles: [user], scopes: ['catalog:read'] }, action: read, subject: Product, expect: allow }\n");
  }));
  t.same(problems.map((p) => p.file), ["2026-11-26/scopes.yaml"]);
});
