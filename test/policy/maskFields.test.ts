// Response field masking in the policy engine (src/policy/maskFields.ts): which parts of a record a
// caller sees, decided with the same compiled abilities the gateway decides requests with. Concrete
// cases for each rule shape, then properties over generated records: masking only ever removes,
// removes nothing when everything is readable, never leaves a denied field anywhere, and a key's
// scopes only ever narrow what its owner sees.
import t from "tap";
import fc from "fast-check";
import { compileAbility } from "../../src/policy/compileAbility.ts";
import { maskRecords } from "../../src/policy/maskFields.ts";
import type { RawPolicyRule } from "../../src/policy/policySet.ts";

const rule = (id: string, fields?: string[], extra: Partial<RawPolicyRule> = {}): RawPolicyRule => ({
  id,
  role: "r",
  action: "read",
  subject: "Order",
  ...(fields === undefined ? {} : { fields }),
  ...extra,
});
const principal = { id: "u1", region: "eu" };
const mask = (rules: RawPolicyRule[], body: unknown, options: { scope?: RawPolicyRule[]; at?: string } = {}): unknown => {
  const outcome = maskRecords(compileAbility(rules), options.scope === undefined ? null : compileAbility(options.scope), principal, options.at === undefined ? { subject: "Order" } : { subject: "Order", at: options.at }, body);
  return outcome.ok ? outcome.body : outcome.reason;
};

t.test("rule shapes", async (t) => {
  const record = { id: "o1", buyerId: "u1", notes: "n", address: { street: "s", city: "c" }, lines: [{ sku: "a", price: 1 }, { sku: "b", price: 2 }], tags: ["x"] };
  t.same(mask([rule("all")], record), record, "a rule without fields: everything");
  t.same(mask([rule("some", ["id", "address"])], record), { id: "o1", address: { street: "s", city: "c" } }, "a field names its whole value");
  t.same(mask([rule("nested", ["id", "address.city", "lines.sku"])], record), { id: "o1", address: { city: "c" }, lines: [{ sku: "a" }, { sku: "b" }] }, "nested paths, lists of objects by the list's path");
  t.same(mask([rule("all"), rule("deny", ["address", "lines.price"], { inverted: true })], record), { id: "o1", buyerId: "u1", notes: "n", lines: [{ sku: "a" }, { sku: "b" }], tags: ["x"] }, "deny removes a field whole and a nested one");
  t.notOk("address" in (mask([rule("all"), rule("deny", ["address"], { inverted: true }), rule("back", ["address.city"])], record) as object), "a denied field stays denied under a more specific allow");
  t.same(mask([rule("own", undefined, { conditions: { buyerId: "${principal.id}" } }), rule("summary", ["id"])], [record, { ...record, id: "o2", buyerId: "u2" }]), [record, { id: "o2" }], "conditions per record");
  t.same(mask([rule("own", undefined, { conditions: { buyerId: "${principal.id}" } })], [record, { ...record, buyerId: "u2" }]), [record], "a record not readable at all leaves the list");
  t.same(mask([rule("own", undefined, { conditions: { buyerId: "${principal.id}" } })], { ...record, buyerId: "u2" }), {}, "a single one becomes {}");
  t.same(mask([], [record]), [], "no rule: nothing");
  t.same(mask([rule("deny-all", undefined, { inverted: true }), rule("all")], [record]), [], "an unconditional deny wins");
});

t.test("lists of anything, empty keys, CASL's marker", async (t) => {
  const rules = [rule("all"), rule("deny", ["payment.iban"], { inverted: true })];
  t.same(mask(rules, { payment: [{ iban: "x", method: "card" }, null, [{ iban: "y" }], "s"] }), { payment: [{ method: "card" }, null, [{}], "s"] }, "a deny reaches into mixed and nested lists");
  t.same(mask([rule("id", ["id", "lines.sku"])], { id: 1, lines: [{ sku: "a", price: 1 }, 7, [{ sku: "b", price: 2 }]] }), { id: 1, lines: [{ sku: "a" }, [{ sku: "b" }]] }, "an unreadable list keeps only its readable parts");
  t.same(mask([rule("id", ["id"])], { id: 1, "": { secret: 1 } }), { id: 1 }, "an empty key is never readable, nor what is under it");
  t.same(mask([rule("all")], { id: 1, "": 2 }), { id: 1 }, "not even when everything is");
  t.same(mask([rule("all")], { id: 1, __caslSubjectType__: "Shop" }), { id: 1, __caslSubjectType__: "Shop" }, "CASL's marker in data is data, and does not make CASL throw");
});

t.test("envelopes, shapes that are not records, and keys' scopes", async (t) => {
  const record = { id: "o1", notes: "n" };
  t.same(mask([rule("id", ["id"])], { orders: [record], next: "c2" }, { at: "orders" }), { orders: [{ id: "o1" }], next: "c2" });
  t.equal(mask([rule("all")], { items: [record] }, { at: "orders" }), "NOT_RECORDS", "no such property");
  t.equal(mask([rule("all")], [record, 1]), "NOT_RECORDS", "a list with something else in it");
  for (const body of ["s", 1, null, true, [[record]]]) t.equal(mask([rule("all")], body), "NOT_RECORDS", JSON.stringify(body));
  t.same(mask([rule("all")], []), [], "an empty list");
  t.same(mask([rule("all")], [record], { scope: [rule("scope", ["id"])] }), [{ id: "o1" }], "owner ∩ scope");
  t.same(mask([rule("id", ["id"])], [record], { scope: [rule("scope")] }), [{ id: "o1" }], "scope ∩ owner");
  const prototype = JSON.parse('{"id":"o1","__proto__":{"polluted":true}}') as Record<string, unknown>;
  const masked = mask([rule("all")], prototype) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(masked), Object.prototype, "a __proto__ key stays data");
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 40; i++) deep = { next: deep };
  const out = JSON.stringify(mask([rule("all")], { id: "x", deep }));
  t.notMatch(out, /leaf/, "nesting past the bound is removed, not kept unexamined");
});

// Generated records over a small vocabulary of keys, so rules and records name the same paths.
const KEYS = ["id", "buyerId", "notes", "address", "city", "lines", "price"] as const;
const key = fc.constantFrom(...KEYS);
const leaf = fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.boolean(), fc.constant(null));
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  // Lists of anything: objects, leaves, nested lists, mixed.
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("object"), fc.array(tie("value"), { maxLength: 3 })),
  object: fc.dictionary(key, tie("value"), { maxKeys: 4 }),
})).value;
const record = fc.dictionary(key, value, { maxKeys: 5 });
const path = fc.array(key, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("."));
const ruleArb = fc.record({
  fields: fc.option(fc.uniqueArray(path, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  inverted: fc.boolean(),
  owned: fc.boolean(),
});
const rulesArb = fc.array(ruleArb, { maxLength: 4 }).map((specs) =>
  specs.map((s, i) => rule(`g${i}`, s.fields, { ...(s.inverted ? { inverted: true } : {}), ...(s.owned ? { conditions: { buyerId: "${principal.id}" } } : {}) })),
);

/** Is `part` what is left of `whole` after removals only (object keys gone, list elements masked in place)? */
function within(part: unknown, whole: unknown): boolean {
  if (Array.isArray(part)) return Array.isArray(whole) && part.length <= whole.length && part.every((p) => whole.some((w) => within(p, w)));
  if (typeof part === "object" && part !== null) {
    if (typeof whole !== "object" || whole === null || Array.isArray(whole)) return false;
    return Object.entries(part).every(([k, v]) => Object.hasOwn(whole, k) && within(v, (whole as Record<string, unknown>)[k]));
  }
  return Object.is(part, whole);
}
/** Every dotted path of an object (list elements by the list's path). */
function pathsOf(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => pathsOf(v, prefix));
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const p = prefix === "" ? k : `${prefix}.${k}`;
    return [p, ...pathsOf(v, p)];
  });
}

t.test("properties over generated rules and records", async (t) => {
  fc.assert(
    fc.property(rulesArb, fc.array(record, { maxLength: 3 }), (rules, records) => within(mask(rules, records), records)),
    { numRuns: 500 },
  );
  t.pass("masking only removes");
  fc.assert(fc.property(fc.array(record, { maxLength: 3 }), (records) => JSON.stringify(mask([rule("all")], records)) === JSON.stringify(records)), { numRuns: 300 });
  t.pass("everything readable: nothing removed");
  fc.assert(
    fc.property(rulesArb, fc.uniqueArray(path, { minLength: 1, maxLength: 2 }), fc.array(record, { maxLength: 3 }), (rules, denied, records) => {
      const out = mask([...rules, rule("deny", denied, { inverted: true })], records);
      // A denied path and everything under it are gone from every record.
      return pathsOf(out).every((p) => !denied.some((d) => p === d || p.startsWith(`${d}.`)));
    }),
    { numRuns: 500 },
  );
  t.pass("a denied field appears nowhere");
  fc.assert(
    fc.property(rulesArb, rulesArb, fc.array(record, { maxLength: 3 }), (own, scope, records) => {
      const scoped = mask(own, records, { scope });
      return within(scoped, mask(own, records)) && within(scoped, mask(scope, records));
    }),
    { numRuns: 500 },
  );
  t.pass("a key's scopes only narrow: owner ∩ scope is within each");
});
