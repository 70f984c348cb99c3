// What a security team editing policy files is told when a version is refused: the file, the place
// in it, and what to write instead (the offending key, the expected form, a near miss), with every
// problem of the version at once rather than one per attempt.
import t from "tap";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Type from "#typebox";
import Value from "#typebox/value";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { PolicyError, type PolicyProblem } from "../../src/policy/policySet.ts";

const MANIFEST = 'version: "v1"\nsummary: Test policy\ncreated: "2026-01-01T00:00:00Z"\nprincipalAttributes: [id, region]\n';
const ROLE = "role: user\nrules:\n  - id: user.read\n    action: read\n    subject: Product\n";
const ENDPOINTS = "endpoints:\n  - id: products.list\n    methods: [GET]\n    path: /api/products\n    action: read\n    subject: Product\n";
const SCOPES = "scopes:\n  - id: catalog:read\n    rules: [{ id: scope.read, action: read, subject: Product }]\n";
const TEST = "tests:\n  - name: reads\n    principal: { roles: [user] }\n    action: read\n    subject: Product\n    expect: allow\n";

type Tap = { teardown(fn: () => void): void };

/** A small valid version folder `name` (manifest, one role, one endpoint), with files replaced (a string) or removed (null). */
function version(t: Tap, files: Record<string, string | null> = {}, name = "v1"): string {
  const root = mkdtempSync(join(tmpdir(), "gerbang-problems-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, name);
  const all: Record<string, string | null> = { "manifest.yaml": MANIFEST.replace('"v1"', JSON.stringify(name)), "roles/user.yaml": ROLE, "endpoints/api.yaml": ENDPOINTS, ...files };
  for (const [file, content] of Object.entries(all)) {
    if (content === null) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), content);
  }
  return dir;
}

function refusal(dir: string): PolicyError {
  try {
    loadPolicySet(dir);
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error("the version loaded");
}

/** Problems without their line (the line tests below check lines). */
const problemsOf = (dir: string): PolicyProblem[] => refusal(dir).problems.map(({ line: _line, ...p }) => p);

const rule = (lines: string): string => `role: user\nrules:\n  - id: user.read\n${lines.replace(/^/gm, "    ")}\n`;
const endpoint = (lines: string): string => `endpoints:\n  - id: products.list\n${lines.replace(/^/gm, "    ")}\n`;
const METHODS = 'must be one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"';

// [what the editor did, file, its content, the problem they are shown (path: reason), and nothing else]
const mistakes: Array<[string, string, string, string, string]> = [
  ["misspelt a rule key", "roles/user.yaml", rule("action: read\nsubjct: Product"), "/rules/0", 'unknown property "subjct"; did you mean "subject"?'],
  ["swapped two letters of a rule key", "roles/user.yaml", rule("action: read\nsubject: Product\nconditons: { a: 1 }"), "/rules/0", 'unknown property "conditons"; did you mean "conditions"?'],
  ["capitalised a rule key", "roles/user.yaml", rule("action: read\nsubject: Product\nInverted: true"), "/rules/0", 'unknown property "Inverted"; did you mean "inverted"?'],
  ["typed an extra letter in a rule key", "roles/user.yaml", rule("actionn: read\nsubject: Product"), "/rules/0", 'unknown property "actionn"; did you mean "action"?'],
  ["used a key from another policy language", "roles/user.yaml", rule("action: read\nsubject: Product\neffect: allow"), "/rules/0", 'unknown property "effect" (allowed: id, action, subject, fields, conditions, inverted, description)'],
  ["wrote rule: beside role:", "roles/user.yaml", "role: user\nrule: []\n", "/", 'unknown property "rule"; did you mean "rules"?'],
  ["left out a rule's subject", "roles/user.yaml", rule("action: read"), "/rules/0", 'missing required property "subject"'],
  ["gave a rule an id starting with a digit", "roles/user.yaml", "role: user\nrules:\n  - { id: 1st, action: read, subject: Product }\n", "/rules/0/id", "must be an id: a letter, then up to 127 letters, digits, _ . : or -"],
  ["named a role with a space", "roles/user.yaml", "role: Sales Team\nrules: []\n", "/role", "must be a name: a letter, then up to 63 letters, digits, _ or -"],
  ["gave a rule an empty action list", "roles/user.yaml", rule("action: []\nsubject: Product"), "/rules/0/action", "must be a name or a non-empty list of names"],
  ["gave a rule an empty field list", "roles/user.yaml", rule("action: read\nsubject: Product\nfields: []"), "/rules/0/fields", "must not be empty"],
  ["gave a rule an empty field name", "roles/user.yaml", rule("action: read\nsubject: Product\nfields: ['']"), "/rules/0/fields/0", "must not be empty"],
  ["wrote yes for inverted", "roles/user.yaml", rule("action: read\nsubject: Product\ninverted: 'yes'"), "/rules/0/inverted", "must be true or false"],
  ["wrote a single rule instead of a list", "roles/user.yaml", "role: user\nrules: all\n", "/rules", "must be a list"],
  ["wrote a list instead of a role file", "roles/user.yaml", "- role: user\n", "/", "must be a mapping"],
  ["gave a rule a number as description", "roles/user.yaml", rule("action: read\nsubject: Product\ndescription: 5"), "/rules/0/description", "must be text"],
  ["gave a rule conditions that are not a mapping", "roles/user.yaml", rule("action: read\nsubject: Product\nconditions: [a]"), "/rules/0/conditions", "must be a mapping"],
  ["left the manifest summary empty", "manifest.yaml", 'version: "v1"\nsummary: ""\ncreated: "2026-01-01T00:00:00Z"\n', "/summary", "must not be empty"],
  ["wrote a date in words", "manifest.yaml", 'version: "v1"\nsummary: x\ncreated: yesterday\n', "/created", "must be a date and time such as 2026-11-26T09:00:00Z"],
  ["misspelt summary", "manifest.yaml", 'version: "v1"\nsumary: x\ncreated: "2026-01-01T00:00:00Z"\n', "/", 'unknown property "sumary"; did you mean "summary"?'],
  ["wrote an HTTP method that does not exist", "endpoints/api.yaml", endpoint("methods: [FETCH]\npath: /api/products\naction: read\nsubject: Product"), "/endpoints/0/methods/0", METHODS],
  ["wrote a method in lower case", "endpoints/api.yaml", endpoint("methods: [get]\npath: /api/products\naction: read\nsubject: Product"), "/endpoints/0/methods/0", `${METHODS}; did you mean "GET"?`],
  ["wrote a number for a method", "endpoints/api.yaml", endpoint("methods: [5]\npath: /api/products\naction: read\nsubject: Product"), "/endpoints/0/methods/0", METHODS],
  ["gave an endpoint no methods", "endpoints/api.yaml", endpoint("methods: []\npath: /api/products\naction: read\nsubject: Product"), "/endpoints/0/methods", "must not be empty"],
  ["left the leading slash off a path", "endpoints/api.yaml", endpoint("methods: [GET]\npath: api/products\naction: read\nsubject: Product"), "/endpoints/0/path", "must be a path pattern starting with /"],
  ["misspelt where the resource comes from", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products/:id\naction: read\nsubject: Product\nresource: { from: resolvr, id: id }"), "/endpoints/0/resource/from", 'must be one of "none", "params", "body", "resolver", "filter"; did you mean "resolver"?'],
  ["gave the resource an unknown key", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products/:id\naction: read\nsubject: Product\nresource: { from: params, key: id }"), "/endpoints/0/resource", 'unknown property "key" (allowed: from, id)'],
  ["asked for fields from the query", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nfields: query"), "/endpoints/0/fields", 'must be "body"'],
  ["set a rate limit of zero", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nrateLimit: { max: 0 }"), "/endpoints/0/rateLimit/max", "must be at least 1"],
  ["set a rate limit in words", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nrateLimit: { max: ten }"), "/endpoints/0/rateLimit/max", "must be a whole number"],
  ["set a rate limit window under a second", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nrateLimit: { max: 5, windowMs: 999 }"), "/endpoints/0/rateLimit/windowMs", "must be at least 1000"],
  ["set a rate limit window over a day", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nrateLimit: { max: 5, windowMs: 86400001 }"), "/endpoints/0/rateLimit/windowMs", "must be at most 86400000"],
  ["shortened windowMs", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nrateLimit: { max: 5, window: 1000 }"), "/endpoints/0/rateLimit", 'unknown property "window"; did you mean "windowMs"?'],
  ["misspelt an endpoint's subject", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: read\nsubjet: Product"), "/endpoints/0", 'unknown property "subjet"; did you mean "subject"?'],
  ["wrote endpoint: for endpoints:", "endpoints/api.yaml", "endpoint: []\nendpoints: []\n", "/", 'unknown property "endpoint" (allowed: endpoints)'],
  ["named a scope in capitals", "scopes.yaml", "scopes:\n  - id: Catalog Read\n    rules: [{ id: s1, action: read, subject: Product }]\n", "/scopes/0/id", "must be a scope id: lower-case letters, digits, _ or -, starting with a letter, optionally two such words joined by a colon (catalog:read)"],
  ["gave a scope no rules", "scopes.yaml", "scopes:\n  - id: catalog:read\n    rules: []\n", "/scopes/0/rules", "must not be empty"],
  ["shortened a scope's description", "scopes.yaml", "scopes:\n  - id: catalog:read\n    desc: x\n    rules: [{ id: s1, action: read, subject: Product }]\n", "/scopes/0", 'unknown property "desc" (allowed: id, description, rules)'],
  ["wrote scope: for scopes:", "scopes.yaml", "scope: []\n", "/", 'unknown property "scope"; did you mean "scopes"?'],
  ["misspelt allow in a policy test", "tests/t_test.yaml", TEST.replace("expect: allow", "expect: alow"), "/tests/0/expect", 'must be one of "allow", "deny"; did you mean "allow"?'],
  ["left a policy test unnamed", "tests/t_test.yaml", TEST.replace("name: reads", "name: ''"), "/tests/0/name", "must not be empty"],
  ["wrote expected for expect", "tests/t_test.yaml", TEST.replace("expect: allow", "expected: allow"), "/tests/0", 'unknown property "expected"; did you mean "expect"?'],
  ["gave a test principal a key it does not have", "tests/t_test.yaml", TEST.replace("{ roles: [user] }", "{ roles: [user], role: admin }"), "/tests/0/principal", 'unknown property "role" (allowed: roles, attributes, scopes)'],
  ["gave a test principal a scope in capitals", "tests/t_test.yaml", TEST.replace("{ roles: [user] }", "{ roles: [user], scopes: [Catalog] }"), "/tests/0/principal/scopes/0", "must be a scope id: lower-case letters, digits, _ or -, starting with a letter, optionally two such words joined by a colon (catalog:read)"],
  ["wrote test: for tests:", "tests/t_test.yaml", "test: []\n", "/", 'unknown property "test"; did you mean "tests"?'],
];

for (const [what, file, content, path, reason] of mistakes) {
  t.test(`an editor who ${what} is told so`, async (t) => {
    t.same(problemsOf(version(t, { [file]: content })), [{ file: `v1/${file}`, path, reason }]);
  });
}

t.test("a version folder whose name is not a version is refused, in words", async (t) => {
  t.same(problemsOf(version(t, {}, "-v1")), [{ file: "-v1/manifest.yaml", path: "/version", reason: "must be a version: a letter or digit, then up to 63 letters, digits, . _ or -" }]);
});

t.test("the CLI prints each problem as `file:line path: reason`", async (t) => {
  const error = refusal(version(t, { "roles/user.yaml": rule("action: read\nsubjct: Product") }));
  t.equal(error.message, 'invalid policy set:\n  v1/roles/user.yaml:3 /rules/0: unknown property "subjct"; did you mean "subject"?');
});

t.test("each problem names the line of the value it is about (or of the nearest enclosing one)", async (t) => {
  const lines = (files: Record<string, string>): Array<[string, number | undefined]> => refusal(version(t, files)).problems.map((p) => [p.path, p.line]);
  // The wrong method is on line 4, inside the list that starts there.
  t.same(lines({ "endpoints/api.yaml": "endpoints:\n  - id: products.list\n    path: /api/products\n    methods: [GET, FETCH]\n    action: read\n    subject: Product\n" }), [["/endpoints/0/methods/1", 4]]);
  t.same(lines({ "roles/user.yaml": "role: user\nrules:\n  - id: a\n    action: read\n    subject: Product\n  - id: a\n    action: read\n    subject: Product\n" }), [["/rules/1/id", 6]]);
  // A condition on an unknown attribute: the line of the condition.
  t.same(lines({ "roles/user.yaml": "role: user\nrules:\n  - id: a\n    action: read\n    subject: Product\n    conditions:\n      tenant: ${principal.tenant}\n" }), [["/rules/0/conditions/tenant", 7]]);
  // A YAML syntax error has no path, only its line.
  t.same(lines({ "roles/user.yaml": "role: user\nrules:\n  - id: a\n    action: [read\n" }), [["", 5]]);
  // A missing file has neither.
  t.same(refusal(version(t, { "manifest.yaml": null })).problems.map((p) => p.line), [undefined]);
});

t.test("every optional key of every file is accepted", async (t) => {
  const policy = loadPolicySet(
    version(t, {
      "roles/user.yaml": "role: user\ndescription: Signed-in users\nrules:\n  - id: user.read\n    description: Read own products\n    action: [read, list]\n    subject: [Product]\n    fields: [name]\n    conditions: { ownerId: '${principal.id}' }\n  - id: user.deny\n    action: delete\n    subject: Product\n    inverted: true\n",
      "endpoints/api.yaml": endpoint("description: Products\nmethods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]\npath: /api/products/:id\naction: read\nsubject: Product\nresource: { from: params, id: id }\nfields: body\nrateLimit: { max: 5, windowMs: 1000 }") + "  - id: any\n    methods: ['*']\n    path: /api/any\n    action: read\n    subject: Product\n",
      "scopes.yaml": "scopes:\n  - id: catalog:read\n    description: Read the catalogue\n    rules: [{ id: s1, action: read, subject: Product }]\n",
      "tests/t_test.yaml": "tests:\n  - name: reads\n    principal: { roles: [user], attributes: { id: u1 }, scopes: ['catalog:read'] }\n    action: read\n    subject: Product\n    resource: { ownerId: u1 }\n    fields: [name]\n    expect: allow\n    reason: allowed\n",
    }),
  );
  t.same([...(policy.matcher.match("PATCH", "/api/products/7")?.endpoint.methods ?? [])], ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
  t.equal(policy.matcher.match("TRACE", "/api/any")?.endpoint.spec.id, "any");
  t.equal(policy.scopes.get("catalog:read")?.description, "Read the catalogue");
  t.equal(policy.tests[0]?.reason, "allowed");
});

t.test("a manifest without principalAttributes lets conditions read id, email and region", async (t) => {
  const manifest = 'version: "v1"\nsummary: x\ncreated: "2026-01-01T00:00:00Z"\n';
  const conditions = "conditions: { ownerId: '${principal.id}', email: '${principal.email}', region: '${principal.region}', tenant: '${principal.tenant}' }";
  t.same(problemsOf(version(t, { "manifest.yaml": manifest, "roles/user.yaml": rule(`action: read\nsubject: Product\n${conditions}`) })), [
    { file: "v1/roles/user.yaml", path: "/rules/0/conditions/tenant", reason: "unknown principal attribute tenant (known: id, email, region)" },
  ]);
});

t.test("an endpoint rate limit without a window counts per minute", async (t) => {
  const policy = loadPolicySet(version(t, { "endpoints/api.yaml": endpoint("methods: [GET]\npath: /api/products\naction: read\nsubject: Product\nrateLimit: { max: 5 }") }));
  t.same(policy.matcher.match("GET", "/api/products")?.endpoint.spec.rateLimit, { max: 5, windowMs: 60000 });
});

t.test("every problem of a version is reported at once, across files and passes", async (t) => {
  const dir = version(t, {
    "manifest.yaml": 'version: "v2"\nsummary: x\ncreated: yesterday\nprincipalAttributes: [id, region]\n',
    "roles/sales.yaml": "role: sales\nrules:\n  - id: sales.read\n    action: read\n    subjct: Order\n  - id: sales.orders\n    action: read\n    subject: Order\n    conditions: { region: '${principal.regoin}' }\n",
    "roles/user.yaml": "role: Sales Team\nrules:\n  - { id: sales.orders, action: read, subject: Order, conditions: { n: { $regex: x } } }\n",
    "endpoints/api.yaml": "endpoints:\n  - { id: a, methods: [FETCH], path: /api/a, action: read, subject: A }\n  - { id: b, methods: [GET], path: /api/../b, action: read, subject: B }\n",
    "scopes.yaml": SCOPES,
    "tests/t_test.yaml": "tests:\n  - name: reads\n    principal: { roles: [sales], scopes: ['catalog:reed'] }\n    action: read\n    subject: Product\n    expect: allow\n  - { name: '', principal: { roles: [sales] }, action: read, subject: Product, expect: deny }\n",
  });
  t.same(problemsOf(dir), [
    { file: "v1/manifest.yaml", path: "/created", reason: "must be a date and time such as 2026-11-26T09:00:00Z" },
    { file: "v1/manifest.yaml", path: "/version", reason: "must equal the folder name v1" },
    { file: "v1/roles/sales.yaml", path: "/rules/0", reason: 'unknown property "subjct"; did you mean "subject"?' },
    { file: "v1/roles/sales.yaml", path: "/rules/1/conditions/region", reason: "unknown principal attribute regoin (known: id, region)" },
    { file: "v1/roles/user.yaml", path: "/role", reason: "must be a name: a letter, then up to 63 letters, digits, _ or -" },
    { file: "v1/roles/user.yaml", path: "/rules/0/id", reason: "duplicate rule id sales.orders" },
    { file: "v1/roles/user.yaml", path: "/rules/0/conditions/n/$regex", reason: "operator $regex is not supported" },
    { file: "v1/endpoints/api.yaml", path: "/endpoints/0/methods/0", reason: METHODS },
    { file: "v1/endpoints/api.yaml", path: "/endpoints/1/path", reason: 'segment ".." is not a canonical literal' },
    { file: "v1/tests/t_test.yaml", path: "/tests/1/name", reason: "must not be empty" },
    { file: "v1/tests/t_test.yaml", path: "/tests/0/principal/scopes/0", reason: "test \"reads\" names unknown scope catalog:reed; did you mean catalog:read?" },
  ]);
});

t.test("a version with a role problem and no endpoints is told both", async (t) => {
  t.same(problemsOf(version(t, { "endpoints/api.yaml": null, "roles/user.yaml": "role: user\nrules: all\n" })), [
    { file: "v1/roles/user.yaml", path: "/rules", reason: "must be a list" },
    { file: "v1/endpoints", path: "", reason: "no endpoints defined" },
  ]);
});

t.test("endpoints in a file with a mistake are not reported as missing", async (t) => {
  t.same(problemsOf(version(t, { "endpoints/api.yaml": endpoint("methods: [FETCH]\npath: /api/products\naction: read\nsubject: Product") })), [
    { file: "v1/endpoints/api.yaml", path: "/endpoints/0/methods/0", reason: METHODS },
  ]);
});

t.test("a test naming an unknown scope, with no scope close to it", async (t) => {
  const test = TEST.replace("{ roles: [user] }", "{ roles: [user], scopes: ['orders:write'] }");
  t.same(problemsOf(version(t, { "scopes.yaml": SCOPES, "tests/t_test.yaml": test })), [
    { file: "v1/tests/t_test.yaml", path: "/tests/0/principal/scopes/0", reason: 'test "reads" names unknown scope orders:write' },
  ]);
});

t.test("a test's scopes are not judged against a scopes.yaml with a mistake", async (t) => {
  const test = TEST.replace("{ roles: [user] }", "{ roles: [user], scopes: ['catalog:read', 'orders:read'] }");
  const scopes = `${SCOPES}  - id: orders:read\n    rules: []\n`;
  t.same(problemsOf(version(t, { "scopes.yaml": scopes, "tests/t_test.yaml": test })), [{ file: "v1/scopes.yaml", path: "/scopes/1/rules", reason: "must not be empty" }]);
});

t.test("a manifest with a mistake still lends its attribute list to placeholders", async (t) => {
  const manifest = 'version: "v1"\nsummary: ""\ncreated: "2026-01-01T00:00:00Z"\nprincipalAttributes: [tenant]\n';
  t.same(problemsOf(version(t, { "manifest.yaml": manifest, "roles/user.yaml": rule("action: read\nsubject: Product\nconditions: { a: '${principal.tenant}', b: '${principal.zone}' }") })), [
    { file: "v1/manifest.yaml", path: "/summary", reason: "must not be empty" },
    { file: "v1/roles/user.yaml", path: "/rules/0/conditions/b", reason: "unknown principal attribute zone (known: tenant)" },
  ]);
});

t.test("a broken attribute list does not make every placeholder look unknown", async (t) => {
  const manifest = 'version: "v1"\nsummary: x\ncreated: "2026-01-01T00:00:00Z"\nprincipalAttributes: id\n';
  t.same(problemsOf(version(t, { "manifest.yaml": manifest, "roles/user.yaml": rule("action: read\nsubject: Product\nconditions: { a: '${principal.id}', b: { $regex: x } }") })), [
    { file: "v1/manifest.yaml", path: "/principalAttributes", reason: "must be a list" },
    { file: "v1/roles/user.yaml", path: "/rules/0/conditions/b/$regex", reason: "operator $regex is not supported" },
  ]);
});

t.test("a missing manifest does not hide the problems of the rules", async (t) => {
  t.same(problemsOf(version(t, { "manifest.yaml": null, "roles/user.yaml": rule("action: read\nsubject: Product\nconditions: { a: '${principal.id}', b: { $regex: x } }") })), [
    { file: "v1/manifest.yaml", path: "", reason: "file not found" },
    { file: "v1/roles/user.yaml", path: "/rules/0/conditions/b/$regex", reason: "operator $regex is not supported" },
  ]);
});

t.test("a file with very many mistakes shows twenty and says there are more; other files still report", async (t) => {
  const rules = Array.from({ length: 25 }, (_, i) => `  - { id: r${i}, action: read, subject: Product, effect: allow }`).join("\n");
  const problems = problemsOf(version(t, { "roles/sales.yaml": `role: sales\nrules:\n${rules}\n`, "roles/user.yaml": rule("action: read\nsubjct: Product") }));
  const sales = problems.filter((p) => p.file === "v1/roles/sales.yaml");
  t.equal(sales.length, 21);
  t.same(sales[19], { file: "v1/roles/sales.yaml", path: "/rules/19", reason: 'unknown property "effect" (allowed: id, action, subject, fields, conditions, inverted, description)' });
  t.same(sales[20], { file: "v1/roles/sales.yaml", path: "", reason: "more problems in this file are not shown; fix these first" });
  t.same(problems.filter((p) => p.file === "v1/roles/user.yaml"), [{ file: "v1/roles/user.yaml", path: "/rules/0", reason: 'unknown property "subjct"; did you mean "subject"?' }]);
});

t.test("a file with exactly twenty mistakes shows them all and nothing more", async (t) => {
  const rules = Array.from({ length: 20 }, (_, i) => `  - { id: r${i}, action: read, subject: Product, effect: allow }`).join("\n");
  const problems = problemsOf(version(t, { "roles/user.yaml": `role: user\nrules:\n${rules}\n` }));
  t.equal(problems.length, 20);
  t.notOk(problems.some((p) => p.reason.includes("not shown")));
});

t.test("checking policy files leaves the gateway's cap on request-body errors as it was", async (t) => {
  problemsOf(version(t, { "endpoints/api.yaml": endpoint("methods: [FETCH]\npath: /api/products\naction: read\nsubject: Product") }));
  t.equal(Value.Errors(Type.Array(Type.String()), Array.from({ length: 20 }, (_, i) => i)).length, 8);
});

t.test("of several scopes close to a mistyped one, the closest is suggested, the first listed on a tie", async (t) => {
  const suggestion = (scopes: string[], typo: string): string | undefined => {
    const file = `scopes:\n${scopes.map((id, i) => `  - { id: '${id}', rules: [{ id: s${i}, action: read, subject: Product }] }`).join("\n")}\n`;
    const test = TEST.replace("{ roles: [user] }", `{ roles: [user], scopes: ['${typo}'] }`);
    return /did you mean (\S+)\?$/.exec(problemsOf(version(t, { "scopes.yaml": file, "tests/t_test.yaml": test }))[0]?.reason ?? "")?.[1];
  };
  t.equal(suggestion(["catalog:read", "catalog:reads"], "catalog:rad"), "catalog:read", "the closer one listed first");
  t.equal(suggestion(["catalog:reads", "catalog:read"], "catalog:rad"), "catalog:read", "the closer one listed last");
  t.equal(suggestion(["catalog:reads", "catalog:read"], "catalog:reada"), "catalog:reads", "equally close: the first listed");
  t.equal(suggestion(["catalog:read"], "orders:write"), undefined, "nothing close");
});

// subjects.yaml: what a subject is. A version with one is checked against it everywhere.
const SUBJECTS = "subjects:\n  - name: Product\n    actions: [read, update]\n    attributes: { id: string, ownerId: string, price: number }\n";
const withSubjects = (files: Record<string, string>): Record<string, string> => ({ "subjects.yaml": SUBJECTS, ...files });

const subjectMistakes: Array<[string, string, string, string, string]> = [
  ["named a subject the schema does not declare", "roles/user.yaml", rule("action: read\nsubject: Prodcut"), "/rules/0/subject", "unknown subject Prodcut; did you mean Product?"],
  ["gave a subject an action it does not have", "roles/user.yaml", rule("action: delete\nsubject: Product"), "/rules/0/action", "Product has no action delete (declared: read, update)"],
  ["conditioned on an attribute the subject does not have", "roles/user.yaml", rule("action: read\nsubject: Product\nconditions: { ownrId: '${principal.id}' }"), "/rules/0/conditions/ownrId", "a condition on Product.ownrId, which Product does not declare; did you mean ownerId?"],
  ["limited a rule to a field the subject does not have", "roles/user.yaml", rule("action: update\nsubject: Product\nfields: [colour]"), "/rules/0/fields/0", "a field rule on Product.colour, which Product does not declare (declared: id, ownerId, price)"],
  ["compared a number attribute with text", "roles/user.yaml", rule("action: read\nsubject: Product\nconditions: { price: { $ne: cheap } }"), "/rules/0/conditions/price", 'Product.price is a number; "cheap" can never be equal to one'],
  ["ordered a text attribute", "roles/user.yaml", rule("action: read\nsubject: Product\nconditions: { ownerId: { $gt: '${principal.id}' } }"), "/rules/0/conditions/ownerId", "Product.ownerId is a string; strings cannot be ordered in a condition: the gateway orders them by code unit, PostgreSQL by collation, so a data filter would disagree with the check"],
  ["asked whether an attribute exists", "roles/user.yaml", rule("action: read\nsubject: Product\nconditions: { ownerId: { $exists: true } }"), "/rules/0/conditions/ownerId/$exists", "$exists is refused: a database filter cannot tell an absent attribute from null (write null, or { $ne: null })"],
  ["mapped an endpoint to an undeclared action", "endpoints/api.yaml", endpoint("methods: [GET]\npath: /api/products\naction: list\nsubject: Product"), "/endpoints/0/action", "Product has no action list (declared: read, update)"],
  ["wrote a test of an undeclared subject", "tests/t_test.yaml", "tests:\n  - { name: x, principal: { roles: [user] }, action: read, subject: Shop, expect: deny }\n", "/tests/0/subject", "unknown subject Shop (declared: Product)"],
];
for (const [what, file, content, path, reason] of subjectMistakes) {
  t.test(`with a subject schema, an editor who ${what} is told so`, async (t) => {
    t.same(problemsOf(version(t, withSubjects({ [file]: content }))), [{ file: `v1/${file}`, path, reason }]);
  });
}

t.test("without subjects.yaml nothing is checked against subjects; `all` and `manage` are always allowed", async (t) => {
  t.doesNotThrow(() => loadPolicySet(version(t, { "roles/user.yaml": rule("action: delete\nsubject: Anything") })));
  t.doesNotThrow(() => loadPolicySet(version(t, withSubjects({ "roles/user.yaml": rule("action: manage\nsubject: all") }))));
});

t.test("a test that names a role the version does not define is a problem, with a suggestion", async (t) => {
  const problems = problemsOf(version(t, { "tests/t_test.yaml": "tests:\n  - { name: x, principal: { roles: [usr] }, action: read, subject: Product, expect: allow }\n" }));
  t.same(problems, [{ file: "v1/tests/t_test.yaml", path: "/tests/0/principal/roles/0", reason: 'test "x" names unknown role usr; did you mean user?' }]);
});

t.test("rules that can never have an effect are warnings, with their place, and the version still loads", async (t) => {
  const policy = loadPolicySet(
    version(t, {
      "roles/user.yaml": "role: user\nrules:\n  - id: user.read\n    action: read\n    subject: Product\n  - id: user.no-reads\n    action: read\n    subject: Product\n    inverted: true\n  - id: user.orders\n    action: read\n    subject: Order\n",
    }),
  );
  t.same(
    policy.warnings.map((w) => [w.file, w.line, w.path, w.reason]),
    [
      ["v1/roles/user.yaml", 3, "/rules/0", "never allows anything: the deny rule user.no-reads (no conditions, no fields) covers it"],
      ["v1/roles/user.yaml", 10, "/rules/2", "no endpoint asks for read Order: the rule reaches upstreams only through the packed rules"],
    ],
  );
});

t.test("a listing has no body fields to check", async (t) => {
  const listing = endpoint("methods: [GET]\npath: /api/orders\naction: read\nsubject: Product\nresource: { from: filter }\nfields: body");
  t.same(problemsOf(version(t, { "endpoints/api.yaml": listing })), [{ file: "v1/endpoints/api.yaml", path: "/endpoints/0/fields", reason: "a listing (resource from filter) has no body fields to check" }]);
});
