// The rest of the pure policy engine: version digests (an edited version must be told from an
// unchanged one), error messages, the ability cache (one compilation per role or scope set, unknown
// roles and scopes grant nothing, warm-up before a switch, a bound), deny-last compilation, and the
// API-key intersection with its reasons.
import t from "tap";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { policyDigest } from "../../src/policy/policyDigest.ts";
import { PolicyError, type PolicySet, type RawPolicyRule } from "../../src/policy/policySet.ts";
import { AbilityCache } from "../../src/policy/abilityCache.ts";
import { compileAbility, ruleIdOf, rulesForPrincipal } from "../../src/policy/compileAbility.ts";
import { evaluate, evaluateWithin } from "../../src/policy/evaluate.ts";

const rule = (id: string, role: string, action: string, subject: string, extra: Partial<RawPolicyRule> = {}): RawPolicyRule => ({ id, role, action, subject, ...extra });

t.test("policyDigest: the same files give the same digest; any edit, rename or addition changes it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-digest-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "roles"));
  writeFileSync(join(dir, "manifest.yaml"), "version: v1\n");
  writeFileSync(join(dir, "roles/admin.yaml"), "role: admin\n");
  const first = policyDigest(dir);
  t.match(first, /^[0-9a-f]{64}$/);
  t.equal(policyDigest(dir), first, "stable");
  writeFileSync(join(dir, "roles/admin.yaml"), "role: admim\n");
  const edited = policyDigest(dir);
  t.not(edited, first, "one byte edited");
  writeFileSync(join(dir, "roles/admin.yaml"), "role: admin\n");
  t.equal(policyDigest(dir), first, "restored: the same digest again");
  renameSync(join(dir, "roles/admin.yaml"), join(dir, "roles/user.yaml"));
  t.not(policyDigest(dir), first, "a rename");
  renameSync(join(dir, "roles/user.yaml"), join(dir, "roles/admin.yaml"));
  writeFileSync(join(dir, "roles/empty.yaml"), "");
  t.not(policyDigest(dir), first, "an empty file added");
  rmSync(join(dir, "roles/empty.yaml"));
  // Content moved between files must not collide: lengths are part of what is hashed.
  writeFileSync(join(dir, "a"), "xy");
  writeFileSync(join(dir, "b"), "");
  const split1 = policyDigest(dir);
  writeFileSync(join(dir, "a"), "x");
  writeFileSync(join(dir, "b"), "y");
  t.not(policyDigest(dir), split1, "bytes moved from one file to the next");
  rmSync(join(dir, "a"));
  rmSync(join(dir, "b"));
  t.equal(policyDigest(dir), first);
  symlinkSync(join(dir, "roles/admin.yaml"), join(dir, "linked.yaml"));
  t.not(policyDigest(dir), first, "a symbolic link is followed and hashed as a file");
  rmSync(join(dir, "linked.yaml"));
  execFileSync("mkfifo", [join(dir, "roles/pipe")]);
  t.throws(() => policyDigest(dir), /roles\/pipe: not a regular file/, "a FIFO is refused, never read");
});

t.test("PolicyError lists every problem with file and path", async (t) => {
  const error = new PolicyError([
    { file: "roles/sales.yaml", path: "/rules/4", reason: 'unknown property "subjct"' },
    { file: "manifest.yaml", path: "", reason: "missing" },
  ]);
  t.equal(error.name, "PolicyError");
  t.equal(error.message, 'invalid policy set:\n  roles/sales.yaml /rules/4: unknown property "subjct"\n  manifest.yaml: missing');
  t.equal(error.problems.length, 2);
});

const policy = {
  version: "v1",
  rulesByRole: new Map<string, RawPolicyRule[]>([
    ["admin", [rule("admin.all", "admin", "manage", "all")]],
    ["user", [rule("user.read", "user", "read", "Product")]],
  ]),
  scopes: new Map([["catalog:read", { rules: [rule("scope.catalog", "scope:catalog:read", "read", "Product")] }]]),
} as unknown as PolicySet;

t.test("AbilityCache: one compilation per role set, whatever its order or repetitions; unknown roles grant nothing", async (t) => {
  const cache = new AbilityCache(policy);
  const a = cache.get(["user", "admin", "user"]);
  const b = cache.get(["admin", "user"]);
  t.equal(a, b, "the same entry");
  t.equal(a.key, "admin,user");
  t.same(a.roles, ["admin", "user"]);
  t.equal(cache.compilations, 1);
  t.ok(a.ability.can("manage", "Shop"));
  const nobody = cache.get(["root"]);
  t.notOk(nobody.ability.can("read", "Product"), "an unknown role: no rules");
  t.same(nobody.rules, []);
  const frozen = Object.freeze(["user"]);
  const first = cache.get(frozen);
  t.equal(cache.get(frozen), first, "a frozen array finds its entry by identity");
  const mutable = ["user"];
  cache.get(mutable);
  mutable.push("admin");
  t.ok(cache.get(mutable).ability.can("manage", "Shop"), "a mutable array is looked up by value every time");
});

t.test("AbilityCache: scopes, their own key space, unknown scopes grant nothing", async (t) => {
  const cache = new AbilityCache(policy);
  const scoped = cache.forScopes(["catalog:read", "catalog:read"]);
  t.equal(scoped.key, "scopes:catalog:read");
  t.ok(scoped.ability.can("read", "Product"));
  t.notOk(scoped.ability.can("read", "Inventory"));
  t.notOk(cache.forScopes(["inventory:gone"]).ability.can("read", "Product"), "a scope dropped in this version grants nothing");
  t.same(cache.forScopes(["inventory:gone"]).rules, [], "it has no rules at all");
  t.not(cache.forScopes(["admin"]).ability.can("manage", "Shop"), true, "a scope named like a role is not the role");
  t.equal(cache.forScopes(["b", "a"]).key, "scopes:a,b", "sorted");
});

t.test("AbilityCache.warmFrom compiles every role and scope set another version's cache has seen", async (t) => {
  const old = new AbilityCache(policy);
  old.get(["user"]);
  old.get(["admin"]);
  old.forScopes(["catalog:read"]);
  const next = new AbilityCache(policy);
  next.warmFrom(old);
  t.equal(next.compilations, 3, "all three, ahead of traffic");
  next.get(["user"]);
  next.forScopes(["catalog:read"]);
  t.equal(next.compilations, 3, "and found afterwards without compiling");
  t.ok(next.forScopes(["catalog:read"]).key.startsWith("scopes:"), "a scope set stays a scope set");
  t.notOk(next.get(["catalog:read"]).ability.can("read", "Product"), "and never becomes a role set");
});

t.test("AbilityCache is bounded: past maxEntries it starts over", async (t) => {
  const cache = new AbilityCache(policy, 2);
  cache.get(["a"]);
  cache.get(["b"]);
  cache.get(["a"]);
  t.equal(cache.compilations, 2, "within the bound: cached");
  cache.get(["c"]);
  t.equal(cache.compilations, 3);
  cache.get(["a"]);
  t.equal(cache.compilations, 4, "the cache was cleared to make room: a is compiled again");
  cache.get(["c"]);
  t.equal(cache.compilations, 4, "c, kept after the clear, is not");
});

t.test("deny-last: an inverted rule wins over an allow, whatever the order in the files", async (t) => {
  const deny = rule("deny.locked", "user", "delete", "Shop", { inverted: true, conditions: { status: "locked" } });
  const allow = rule("allow.delete", "user", "delete", "Shop");
  for (const rules of [[deny, allow], [allow, deny]]) {
    const ability = compileAbility(rules);
    const decision = evaluate(ability, { action: "delete", subject: "Shop", resource: { status: "locked" }, principal: {} });
    t.match(decision, { allowed: false, reason: "DENIED_BY_RULE", ruleId: "deny.locked" }, `${rules.map((r) => r.id).join(", ")}: denied`);
    t.match(evaluate(ability, { action: "delete", subject: "Shop", resource: { status: "open" }, principal: {} }), { allowed: true, ruleId: "allow.delete" });
  }
  t.same(rulesForPrincipal([deny, allow], {}).map((r) => r.inverted === true), [false, true], "upstreams get the same order");
  t.equal(ruleIdOf({}), null, "an object that is no compiled rule has no id");
  const fielded = compileAbility([rule("f", "user", "update", "Order", { fields: ["shippingAddress"] })]);
  t.match(evaluate(fielded, { action: "update", subject: "Order", resource: {}, fields: ["shippingAddress"], principal: {} }), { allowed: true });
  t.match(evaluate(fielded, { action: "update", subject: "Order", resource: {}, fields: ["shippingAddress", "status"], principal: {} }), { allowed: false, reason: "FIELD_NOT_PERMITTED", field: "status", ruleId: null });
  t.match(evaluate(fielded, { action: "update", subject: "Order", resource: {}, principal: {} }), { allowed: true }, "no fields asked: the rule applies");
});

t.test("rulesForPrincipal drops a rule whose attribute the principal lacks", async (t) => {
  const own = rule("own", "user", "read", "Order", { conditions: { buyerId: "${principal.id}" } });
  const open = rule("open", "user", "read", "Product");
  t.same(rulesForPrincipal([own, open], { id: "u1" }), [{ action: "read", subject: "Order", conditions: { buyerId: "u1" } }, { action: "read", subject: "Product" }]);
  t.same(rulesForPrincipal([own, open], {}), [{ action: "read", subject: "Product" }], "no id: no ownership rule at all");
  t.same(rulesForPrincipal([rule("f", "user", "update", "Order", { fields: ["a"] })], {}), [{ action: "update", subject: "Order", fields: ["a"] }]);
});

t.test("an API key: owner ∩ scopes, with OUTSIDE_KEY_SCOPE when only the scope refuses", async (t) => {
  const owner = compileAbility([rule("owner.read", "user", "read", "all"), rule("owner.update", "user", "update", "Order")]);
  const scope = compileAbility([rule("scope.read", "scope:x", "read", "Product"), rule("scope.update", "scope:x", "update", "Order", { fields: ["note"] })]);
  const input = (action: string, subject: string, fields?: string[]) => ({ action, subject, resource: {}, principal: {}, ...(fields === undefined ? {} : { fields }) });
  t.match(evaluateWithin(owner, scope, input("read", "Product")), { allowed: true, reason: "ALLOWED_BY_RULE", ruleId: "owner.read" }, "both allow: the owner's rule is named");
  t.match(evaluateWithin(owner, scope, input("read", "Inventory")), { allowed: false, reason: "OUTSIDE_KEY_SCOPE", ruleId: null }, "the owner may, the scope does not");
  t.match(evaluateWithin(owner, scope, input("delete", "Product")), { allowed: false, reason: "NO_MATCHING_RULE" }, "the owner's refusal comes first");
  const field = evaluateWithin(owner, scope, input("update", "Order", ["status"]));
  t.match(field, { allowed: false, reason: "OUTSIDE_KEY_SCOPE", field: "status" }, "a field outside the scope is named");
  t.notOk("field" in evaluateWithin(owner, scope, input("read", "Inventory")), "no field when none was refused");
  t.match(evaluateWithin(owner, scope, input("update", "Order", ["note"])), { allowed: true });
  t.match(evaluateWithin(owner, null, input("read", "Inventory")), { allowed: true }, "not a key: the owner decides");
});
