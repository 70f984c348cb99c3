// Policy tests written as requests (tests/*.yaml `requests:`): decided as the gateway decides (endpoint
// map, resource attributes from the path, the body or the resolver, field rules, key scopes), one result
// per principal named in `expect`, and the endpoint × role coverage `gerbang policy test` reports.
import t from "tap";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { endpointCoverage, runPolicyTests } from "../../src/policy/runPolicyTests.ts";
import { decideRequest } from "../../src/policy/decideRequest.ts";
import { AbilityCache } from "../../src/policy/abilityCache.ts";
import type { PolicyError, PolicySet } from "../../src/policy/policySet.ts";

const ROLES: Record<string, string> = {
  "roles/user.yaml": `role: user
rules:
  - { id: user.products.read, action: read, subject: Product }
  - { id: user.shops.update-own, action: update, subject: Shop, fields: [name], conditions: { ownerId: '\${principal.id}' } }
`,
  "roles/admin.yaml": "role: admin\nrules:\n  - { id: admin.all, action: manage, subject: all }\n",
};
const ENDPOINTS = `endpoints:
  - { id: products.list, methods: [GET], path: /api/products, action: read, subject: Product }
  - { id: products.get, methods: [GET], path: /api/products/:productId, action: read, subject: Product, resource: { from: params } }
  - { id: shops.update, methods: [PATCH], path: /api/shops/:shopId, action: update, subject: Shop, resource: { from: resolver, id: shopId }, fields: body }
`;

function version(t: { teardown(fn: () => void): void }, tests: string): string {
  const root = mkdtempSync(join(tmpdir(), "gerbang-request-tests-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "v1");
  for (const sub of ["roles", "endpoints", "tests"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "manifest.yaml"), 'version: "v1"\nsummary: x\ncreated: "2026-01-01T00:00:00Z"\n');
  for (const [file, content] of Object.entries(ROLES)) writeFileSync(join(dir, file), content);
  writeFileSync(join(dir, "endpoints/api.yaml"), ENDPOINTS);
  writeFileSync(join(dir, "scopes.yaml"), "scopes:\n  - { id: 'catalog:read', rules: [{ id: scope.read, action: read, subject: Product }] }\n");
  writeFileSync(join(dir, "tests/r_test.yaml"), tests);
  return dir;
}

/** [path, reason] of each problem loading `dir` reports. */
function problems(t: { throws(fn: () => void): unknown }, dir: string): Array<[string, string]> {
  return (t.throws(() => loadPolicySet(dir)) as PolicyError).problems.map((p) => [p.path, p.reason]);
}

const PRINCIPALS = "principals:\n  owner: { roles: [user], attributes: { id: u1 } }\n  stranger: { roles: [user], attributes: { id: u2 } }\n  key: { roles: [admin], scopes: ['catalog:read'] }\n";

t.test("one result per principal, each naming status, reason, rule and endpoint", async (t) => {
  const dir = version(t, `${PRINCIPALS}requests:
  - name: rename
    request: { method: PATCH, path: /api/shops/s1, body: { name: x } }
    resource: { ownerId: u1 }
    expect:
      owner: { status: 200, rule: user.shops.update-own }
      stranger: { status: 403, reason: CONDITIONS_NOT_MET }
      anonymous: 401
      admin: 200
      key: { status: 403, reason: OUTSIDE_KEY_SCOPE }
`);
  const results = runPolicyTests(loadPolicySet(dir));
  t.same(
    results.map((r) => [r.name, r.passed, r.actual]),
    [
      ["rename as owner", true, "200 ALLOWED_BY_RULE rule user.shops.update-own (endpoint shops.update)"],
      ["rename as stranger", true, "403 CONDITIONS_NOT_MET (endpoint shops.update)"],
      ["rename as anonymous", true, "401 NO_MATCHING_RULE (endpoint shops.update)"],
      ["rename as admin", true, "200 ALLOWED_BY_RULE rule admin.all (endpoint shops.update)"],
      ["rename as key", true, "403 OUTSIDE_KEY_SCOPE (endpoint shops.update)"],
    ],
  );
});

t.test("a wrong status, reason or rule fails the cell and shows what was decided", async (t) => {
  const dir = version(t, `${PRINCIPALS}requests:
  - name: field
    request: { method: PATCH, path: /api/shops/s1, body: { ownerId: u2 } }
    resource: { ownerId: u1 }
    expect:
      owner: 200
      stranger: { status: 403, reason: FIELD_NOT_PERMITTED }
      admin: { status: 200, rule: user.shops.update-own }
`);
  const results = runPolicyTests(loadPolicySet(dir));
  t.same(
    results.map((r) => [r.name, r.passed, r.expected, r.actual]),
    [
      ["field as owner", false, "200", "403 FIELD_NOT_PERMITTED (endpoint shops.update)"],
      ["field as stranger", false, "403 FIELD_NOT_PERMITTED", "403 CONDITIONS_NOT_MET (endpoint shops.update)"],
      ["field as admin", false, "200 rule user.shops.update-own", "200 ALLOWED_BY_RULE rule admin.all (endpoint shops.update)"],
    ],
  );
});

t.test("resource attributes come from where the endpoint says; a resolver endpoint without `resource` is a 404", async (t) => {
  const dir = version(t, `requests:
  - { name: unknown shop, request: { method: PATCH, path: /api/shops/s9, body: { name: x } }, expect: { admin: { status: 404, reason: RESOURCE_NOT_FOUND } } }
  - { name: unmapped, request: { method: DELETE, path: /api/products }, expect: { admin: { status: 403, reason: ENDPOINT_NOT_MAPPED }, anonymous: 403 } }
  - { name: params, request: { method: GET, path: /api/products/p%201 }, expect: { user: 200 } }
  - { name: head, request: { method: HEAD, path: /api/products }, expect: { user: 200 } }
`);
  const policy = loadPolicySet(dir);
  t.ok(runPolicyTests(policy).every((r) => r.passed));
  const got = decideRequest(new AbilityCache(policy), { roles: ["user"], attributes: {}, scopes: null, anonymous: false }, { method: "GET", path: "/api/products/p%201?x=1" });
  t.same(got.resource, { productId: "p 1" }, "path parameters are percent-decoded, the query ignored");
});

t.test("a principal name that is neither listed nor a role is a validation problem, with a suggestion", async (t) => {
  const dir = version(t, `${PRINCIPALS}requests:
  - { name: typo, request: { method: GET, path: /api/products }, expect: { ownr: 200, usr: 200 } }
`);
  t.same(
    problems(t, dir),
    [
      ["/requests/0/expect/ownr", "unknown principal ownr: name one under principals:, a role or a demo user; did you mean owner?"],
      ["/requests/0/expect/usr", "unknown principal usr: name one under principals:, a role or a demo user; did you mean user?"],
    ],
  );
});

t.test("request cases are checked against their schema: status values, methods, an empty expect", async (t) => {
  const dir = version(t, `requests:
  - { name: a, request: { method: FETCH, path: /api/products }, expect: { user: 200 } }
  - { name: b, request: { method: GET, path: /api/products }, expect: { user: 500 } }
  - { name: c, request: { method: GET, path: /api/products }, expect: {} }
  - { name: d, request: { method: GET, path: api/products }, expect: { user: { status: 200, rul: x } } }
`);
  t.same(
    problems(t, dir),
    [
      ["/requests/0/request/method", 'must be one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"'],
      ["/requests/1/expect/user", "must be a status (200, 401, 403, 404) or a mapping { status, reason, rule }"],
      ["/requests/2/expect", "must not be empty"],
      ["/requests/3/request/path", "must be a canonical path starting with / (no query)"],
      ["/requests/3/expect/user", "must be a status (200, 401, 403, 404) or a mapping { status, reason, rule }"],
    ],
  );
});

t.test("coverage: every endpoint × role cell a single-role principal without scopes decides", async (t) => {
  const dir = version(t, `${PRINCIPALS}requests:
  - { name: list, request: { method: GET, path: /api/products }, expect: { user: 200, admin: 200, anonymous: 401 } }
  - { name: get, request: { method: GET, path: /api/products/p1 }, expect: { owner: 200, key: 200 } }
  - { name: nowhere, request: { method: GET, path: /api/nothing }, expect: { admin: 403 } }
`);
  const coverage = endpointCoverage(loadPolicySet(dir));
  t.equal(coverage.cells, 9, "3 endpoints × 3 roles (anonymous included)");
  t.equal(coverage.covered, 4);
  t.same(coverage.missing, [
    { endpoint: "products.get", role: "admin" },
    { endpoint: "products.get", role: "anonymous" },
    { endpoint: "shops.update", role: "admin" },
    { endpoint: "shops.update", role: "anonymous" },
    { endpoint: "shops.update", role: "user" },
  ]);
});

t.test("the shipped versions' request tests cover every endpoint × role cell and pass", async (t) => {
  const root = new URL("../../policies/", import.meta.url).pathname;
  for (const v of ["2026-11-26", "2026-11-27", "2026-12-01"]) {
    const policy: PolicySet = loadPolicySet(join(root, v));
    t.same(endpointCoverage(policy).missing, [], `${v}: every cell`);
    t.same(runPolicyTests(policy).filter((r) => !r.passed), [], `${v}: every case passes`);
  }
});

t.test("property: any request gets one of the gateway's answers, and only an unmapped one says ENDPOINT_NOT_MAPPED", async (t) => {
  const policy = loadPolicySet(join(new URL("../../policies/", import.meta.url).pathname, "2026-12-01"));
  const cache = new AbilityCache(policy);
  const segment = fc.oneof(fc.constantFrom("api", "products", "shops", "orders", "inventory", "admin", "s1", ""), fc.string({ maxLength: 6 }));
  fc.assert(
    fc.property(
      fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
      fc.array(segment, { maxLength: 5 }),
      fc.subarray(["anonymous", "user", "sales", "partner", "admin", "nobody"]),
      fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue()), { nil: undefined }),
      fc.option(fc.dictionary(fc.constantFrom("ownerId", "buyerId", "region", "status"), fc.string({ maxLength: 4 })), { nil: undefined }),
      (method, segments, roles, body, resource) => {
        const path = `/${segments.join("/")}`;
        const got = decideRequest(cache, { roles, attributes: { id: "u1", region: "eu" }, scopes: null, anonymous: roles.length === 1 && roles[0] === "anonymous" }, {
          method,
          path,
          ...(body === undefined ? {} : { body }),
          ...(resource === undefined ? {} : { resource }),
        });
        if (![200, 401, 403, 404].includes(got.status)) return false;
        if ((got.reason === "ENDPOINT_NOT_MAPPED") !== (policy.matcher.match(method, path) === null)) return false;
        return got.status !== 200 || got.ruleId !== null;
      },
    ),
    { numRuns: 500 },
  );
  t.pass("500 requests");
});

t.test("a demo account may be named by its email where the loader knows it (the CLI and the gateway pass the demo's accounts)", async (t) => {
  const dir = version(t, `requests:
  - { name: own shop, request: { method: PATCH, path: /api/shops/s1, body: { name: x } }, resource: { ownerId: "demo:user" }, expect: { "user@demo.gerbang.dev": 200, "buyer@demo.gerbang.dev": 403 } }
`);
  const { DEMO_PRINCIPALS } = await import("../../src/demo/demoUsers.ts");
  const results = runPolicyTests(loadPolicySet(dir, { knownUsers: DEMO_PRINCIPALS }));
  t.same(results.map((r) => [r.name, r.passed]), [["own shop as user@demo.gerbang.dev", true], ["own shop as buyer@demo.gerbang.dev", true]]);
  t.same(problems(t, dir).map(([, reason]) => reason.split(":")[0]), ["unknown principal user@demo.gerbang.dev", "unknown principal buyer@demo.gerbang.dev"], "the engine alone knows no users");
});
