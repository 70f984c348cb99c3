import t from "tap";
import { fileURLToPath } from "node:url";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { PolicyStore } from "../../src/policy/policyStore.ts";
import { evaluate } from "../../src/policy/evaluate.ts";
import type { PolicySet } from "../../src/policy/policySet.ts";

const policy = loadPolicySet(fileURLToPath(new URL("../../policies/2026-11-26", import.meta.url)));

t.test("one compilation per role set and version, whatever the order or the principal", async (t) => {
  const store = new PolicyStore(policy);
  const a = store.abilitiesFor(["user"]);
  const b = store.abilitiesFor(["user"]);
  t.equal(a, b, "same compiled object for the same role set");
  t.equal(store.abilitiesFor(["sales", "user"]), store.abilitiesFor(["user", "sales", "user"]), "role order and duplicates do not matter");
  t.equal(store.current.abilities.compilations, 2);
  // The same compiled ability serves different principals: placeholders resolve at check time.
  const ability = a.ability;
  const shop = { id: "s1", ownerId: "u1" };
  t.ok(evaluate(ability, { action: "update", subject: "Shop", resource: shop, principal: { id: "u1" } }).allowed);
  t.notOk(evaluate(ability, { action: "update", subject: "Shop", resource: shop, principal: { id: "u2" } }).allowed);
  t.equal(store.current.abilities.compilations, 2, "checks compile nothing");
});

t.test("frozen role arrays are found by identity; mutable ones are keyed by content every time", async (t) => {
  const store = new PolicyStore(policy);
  const cache = store.current.abilities;
  const frozen = Object.freeze(["sales", "user"]);
  t.equal(cache.get(frozen), cache.get(["user", "sales"]), "the same entry either way");
  t.equal(cache.get(frozen), cache.get(frozen));
  const mutable = ["user"];
  const first = cache.get(mutable);
  mutable[0] = "admin";
  t.not(cache.get(mutable), first, "a changed array is looked up again, never served its old entry");
  t.equal(cache.get(mutable), cache.get(["admin"]));
});

t.test("activating a version swaps policy and abilities together", async (t) => {
  const store = new PolicyStore(policy);
  const before = store.current;
  store.abilitiesFor(["admin"]);
  const stricter: PolicySet = { ...policy, version: "2026-11-27", rulesByRole: new Map([...policy.rulesByRole].map(([role, rules]) => [role, role === "admin" ? [] : rules])) };
  store.activate(stricter);
  t.not(store.current, before);
  t.equal(store.current.policy.version, "2026-11-27");
  t.equal(store.current.abilities.compilations, 1, "the new version compiled the role set the old one had, before any request needs it");
  t.notOk(evaluate(store.abilitiesFor(["admin"]).ability, { action: "access", subject: "Admin", resource: {}, principal: {} }).allowed);
  t.equal(store.current.abilities.compilations, 1, "and the request found it compiled");
  t.ok(evaluate(before.abilities.get(["admin"]).ability, { action: "access", subject: "Admin", resource: {}, principal: {} }).allowed, "a request holding the old snapshot keeps using it");
});

t.test("unknown roles contribute nothing", async (t) => {
  const store = new PolicyStore(policy);
  t.same(store.abilitiesFor(["root"]).rules, []);
  t.notOk(evaluate(store.abilitiesFor(["root"]).ability, { action: "read", subject: "Product", resource: {}, principal: {} }).allowed);
});

t.test("missing principal attributes never match; reasons name the rule", async (t) => {
  const store = new PolicyStore(policy);
  const sales = store.abilitiesFor(["sales"]).ability;
  const order = { region: "eu", buyerId: "u1" };
  t.same(evaluate(sales, { action: "read", subject: "Order", resource: order, principal: { id: "s1", region: "eu" } }), { allowed: true, reason: "ALLOWED_BY_RULE", ruleId: "sales.orders.read-region" });
  t.equal(evaluate(sales, { action: "read", subject: "Order", resource: order, principal: { id: "s1" } }).reason, "CONDITIONS_NOT_MET");
  t.equal(evaluate(sales, { action: "read", subject: "Order", resource: {}, principal: { id: "s1" } }).reason, "CONDITIONS_NOT_MET", "a resource without the attribute does not match undefined");
  const user = store.abilitiesFor(["user"]).ability;
  t.same(evaluate(user, { action: "update", subject: "Shop", resource: { ownerId: "u1" }, fields: ["name", "ownerId"], principal: { id: "u1" } }), {
    allowed: false,
    reason: "FIELD_NOT_PERMITTED",
    ruleId: "user.shops.owner-immutable",
    field: "ownerId",
  });
});

t.test("endpoint specificity is positional", async (t) => {
  const { compileEndpoint, EndpointMatcher } = await import("../../src/policy/endpointMatcher.ts");
  const spec = (id: string, path: string) => ({ id, methods: ["GET" as const], path, action: "read", subject: "X" });
  const matcher = new EndpointMatcher([
    compileEndpoint(spec("section", "/api/:section/:id"), false),
    compileEndpoint(spec("admin", "/api/admin/**"), false),
    compileEndpoint(spec("x", "/api/x"), false),
    compileEndpoint(spec("xrest", "/api/x/**"), false),
  ]);
  t.equal(matcher.match("GET", "/api/admin/users")?.endpoint.spec.id, "admin", "a literal beats a parameter at the first difference");
  t.equal(matcher.match("GET", "/api/shops/1")?.endpoint.spec.id, "section");
  t.equal(matcher.match("GET", "/api/x")?.endpoint.spec.id, "x", "a fixed pattern beats ** for its own path");
  t.equal(matcher.match("GET", "/api/x/y")?.endpoint.spec.id, "xrest");
  t.equal(matcher.match("HEAD", "/api/x")?.endpoint.spec.id, "x", "HEAD falls back to GET rules");
  t.equal(matcher.match("POST", "/api/x"), null);
});

t.test("the rules an upstream receives put deny last too", async (t) => {
  const { rulesForPrincipal } = await import("../../src/policy/compileAbility.ts");
  const { createMongoAbility } = await import("@casl/ability");
  const rules = [...(policy.rulesByRole.get("admin") ?? []), ...(policy.rulesByRole.get("user") ?? [])];
  const raw = rulesForPrincipal(rules, { id: "u1" });
  t.equal(raw.at(-1)?.inverted, true);
  const ability = createMongoAbility(raw);
  t.notOk(ability.can("update", "Shop", "ownerId"), "the deny holds in the upstream's ability");
});
