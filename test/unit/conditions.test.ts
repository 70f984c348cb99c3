// Rule conditions (src/policy/conditions.ts), the part of the policy engine that decides ownership and
// field rules: each supported operator, with literal and placeholder operands, and the fail-closed
// guards — a principal missing the attribute a rule names is granted nothing, whatever the operator.
import t from "tap";
import { PRINCIPAL, compileConditions, hasPlaceholder, interpolateConditions, validateConditions, type PrincipalAttributes } from "../../src/policy/conditions.ts";

/** Does a rule with these conditions match this resource for this principal? */
const matches = (conditions: Record<string, unknown>, resource: Record<string, unknown>, principal?: PrincipalAttributes): boolean =>
  compileConditions(conditions)({ ...resource, [PRINCIPAL]: principal });

const SALES_EU: PrincipalAttributes = { id: "u1", region: "eu", level: 3, vip: true };
const NO_REGION: PrincipalAttributes = { id: "u2" };

t.test("equality: a literal, a placeholder, null", async (t) => {
  t.ok(matches({ status: "pending" }, { status: "pending" }), "the same value");
  t.notOk(matches({ status: "pending" }, { status: "shipped" }), "another value");
  t.notOk(matches({ status: "pending" }, {}), "a missing field");
  t.ok(matches({ region: "${principal.region}" }, { region: "eu" }, SALES_EU), "the principal's own region");
  t.notOk(matches({ region: "${principal.region}" }, { region: "us" }, SALES_EU), "another region");
  t.notOk(matches({ region: "${principal.region}" }, { region: undefined }, NO_REGION), "no region on either side is no match: fail closed");
  t.notOk(matches({ region: "${principal.region}" }, {}, undefined), "no principal at all");
  t.ok(matches({ deletedAt: null }, { deletedAt: null }), "null matches null");
  t.ok(matches({ deletedAt: null }, {}), "and a missing field");
  t.notOk(matches({ deletedAt: null }, { deletedAt: "2026-01-01" }), "not a value");
  t.ok(matches({ status: { $eq: "pending" } }, { status: "pending" }), "$eq spelled out");
  t.ok(matches({ vip: true }, { vip: true }), "booleans");
  t.notOk(matches({ vip: true }, { vip: "true" }), "without type coercion");
  t.ok(matches({ qty: 3 }, { qty: 3 }));
  t.notOk(matches({ qty: 3 }, { qty: "3" }), "a number is not its string");
});

t.test("$ne: different values, never for a missing attribute", async (t) => {
  t.ok(matches({ status: { $ne: "cancelled" } }, { status: "pending" }));
  t.notOk(matches({ status: { $ne: "cancelled" } }, { status: "cancelled" }));
  t.ok(matches({ ownerId: { $ne: "${principal.id}" } }, { ownerId: "other" }, SALES_EU), "someone else's");
  t.notOk(matches({ ownerId: { $ne: "${principal.id}" } }, { ownerId: "u1" }, SALES_EU), "not their own");
  t.notOk(matches({ region: { $ne: "${principal.region}" } }, { region: "us" }, NO_REGION), "a principal without the attribute is not 'different': fail closed");
  t.ok(matches({ deletedAt: { $ne: null } }, { deletedAt: "2026-01-01" }), "$ne null: present");
  t.notOk(matches({ deletedAt: { $ne: null } }, { deletedAt: null }));
  t.notOk(matches({ deletedAt: { $ne: null } }, {}), "missing counts as null");
});

t.test("$gt, $gte, $lt, $lte on numbers and strings of the same type only", async (t) => {
  const cases: Array<[string, number, number, boolean]> = [
    ["$gt", 5, 3, true], ["$gt", 3, 3, false], ["$gt", 2, 3, false],
    ["$gte", 3, 3, true], ["$gte", 4, 3, true], ["$gte", 2, 3, false],
    ["$lt", 2, 3, true], ["$lt", 3, 3, false], ["$lt", 4, 3, false],
    ["$lte", 3, 3, true], ["$lte", 2, 3, true], ["$lte", 4, 3, false],
  ];
  for (const [op, actual, limit, expected] of cases) t.equal(matches({ qty: { [op]: limit } }, { qty: actual }), expected, `${actual} ${op} ${limit}: ${expected}`);
  t.ok(matches({ code: { $gt: "b" } }, { code: "c" }), "strings compare as strings");
  t.notOk(matches({ code: { $gt: "b" } }, { code: "a" }));
  t.notOk(matches({ qty: { $gt: 3 } }, { qty: "5" }), "a string is never compared with a number");
  t.notOk(matches({ qty: { $lt: "9" } }, { qty: 5 }), "nor the other way round");
  t.notOk(matches({ qty: { $gt: 3 } }, {}), "a missing field is not greater");
  t.notOk(matches({ qty: { $lte: 3 } }, { qty: null }), "null is not less");
  t.notOk(matches({ qty: { $lt: 3 } }, { qty: true }), "a boolean is not a number");
  t.ok(matches({ level: { $lte: "${principal.level}" } }, { level: 2 }, SALES_EU), "against the principal's level");
  t.notOk(matches({ level: { $lte: "${principal.level}" } }, { level: 4 }, SALES_EU));
  t.notOk(matches({ level: { $lte: "${principal.level}" } }, { level: 0 }, NO_REGION), "a principal without a level: no match");
  t.notOk(matches({ level: { $gte: "${principal.vip}" } }, { level: 1 }, SALES_EU), "a boolean attribute cannot be ordered");
  t.notOk(matches({ level: { $gt: null } }, { level: 1 }), "null cannot be ordered");
  t.ok(matches({ qty: { $gt: 1, $lt: 5 } }, { qty: 3 }), "a range: both bounds");
  t.notOk(matches({ qty: { $gt: 1, $lt: 5 } }, { qty: 5 }));
  t.notOk(matches({ qty: { $gt: 1, $lt: 5 } }, { qty: 1 }));
});

t.test("$in and $nin, with placeholders among the members", async (t) => {
  t.ok(matches({ status: { $in: ["pending", "paid"] } }, { status: "paid" }));
  t.notOk(matches({ status: { $in: ["pending", "paid"] } }, { status: "shipped" }));
  t.notOk(matches({ status: { $in: [] } }, { status: "paid" }), "an empty list matches nothing");
  t.ok(matches({ region: { $in: ["global", "${principal.region}"] } }, { region: "eu" }, SALES_EU));
  t.ok(matches({ region: { $in: ["global", "${principal.region}"] } }, { region: "global" }, NO_REGION), "a literal member still matches");
  t.notOk(matches({ region: { $in: ["${principal.region}"] } }, { region: undefined }, NO_REGION), "an unresolved member never matches a missing field");
  t.ok(matches({ status: { $nin: ["cancelled"] } }, { status: "paid" }));
  t.notOk(matches({ status: { $nin: ["cancelled"] } }, { status: "cancelled" }));
  t.ok(matches({ status: { $nin: [] } }, { status: "paid" }), "an empty $nin excludes nothing");
  t.notOk(matches({ region: { $nin: ["${principal.region}"] } }, { region: "us" }, NO_REGION), "$nin with an unresolvable member cannot be decided: no match");
  t.ok(matches({ region: { $nin: ["${principal.region}"] } }, { region: "us" }, SALES_EU));
  t.notOk(matches({ region: { $nin: ["${principal.region}"] } }, { region: "eu" }, SALES_EU));
  t.ok(matches({ deletedAt: { $in: [null] } }, { deletedAt: null }), "null as a member");
});

t.test("$exists", async (t) => {
  t.ok(matches({ shippedAt: { $exists: true } }, { shippedAt: "x" }));
  t.ok(matches({ shippedAt: { $exists: true } }, { shippedAt: null }), "null is present");
  t.notOk(matches({ shippedAt: { $exists: true } }, {}));
  t.ok(matches({ shippedAt: { $exists: false } }, {}));
  t.notOk(matches({ shippedAt: { $exists: false } }, { shippedAt: 0 }));
});

t.test("several fields must all hold; nested paths read own properties only", async (t) => {
  t.ok(matches({ status: "paid", region: "${principal.region}" }, { status: "paid", region: "eu" }, SALES_EU));
  t.notOk(matches({ status: "paid", region: "${principal.region}" }, { status: "pending", region: "eu" }, SALES_EU));
  t.ok(matches({}, {}), "no conditions: the rule applies");
  t.ok(matches({ "shop.ownerId": "${principal.id}" }, { shop: { ownerId: "u1" } }, SALES_EU), "a dotted path");
  t.notOk(matches({ "shop.ownerId": "u1" }, { shop: null }), "through null");
  t.notOk(matches({ "shop.ownerId": "u1" }, { shop: "u1" }), "through a string");
  t.notOk(matches({ "shop.ownerId": "u1" }, { shop: Object.create({ ownerId: "u1" }) }), "an inherited property is not the resource's");
  t.notOk(matches({ toString: { $exists: true } }, {}), "nor is Object.prototype's");
});

t.test("validateConditions names each problem with its path", async (t) => {
  const known = ["id", "region"];
  t.same(validateConditions({ status: "paid", qty: { $gt: 1, $lte: 9 }, r: { $in: ["a", "${principal.region}"] }, n: null, b: false }, known, "/rules/0/conditions"), [], "every supported form");
  t.match(validateConditions({ d: { $exists: true } }, known, "/c"), [["/c/d/$exists", /cannot tell an absent attribute from null/]], "$exists: a database filter could not agree");
  t.match(validateConditions({ code: { $gt: "b" } }, known, "/c"), [["/c/code/$gt", /strings cannot be ordered/]], "string ordering: code units vs collation");
  t.same(validateConditions({ level: { $lte: "${principal.region}" } }, known, "/c"), [], "a placeholder bound is checked against the subject's declared type");
  t.same(validateConditions("x", known, "/c"), [["/c", "conditions must be a mapping of field to value"]]);
  t.same(validateConditions(null, known, "/c"), [["/c", "conditions must be a mapping of field to value"]]);
  t.same(validateConditions([], known, "/c"), [["/c", "conditions must be a mapping of field to value"]]);
  t.same(validateConditions({ $or: [] }, known, "/c"), [["/c/$or", "top-level operator $or is not supported"]]);
  t.same(validateConditions({ s: ["a"] }, known, "/c"), [["/c/s", "use { $in: [...] } to match one of several values"]]);
  t.same(validateConditions({ s: { $regex: "." } }, known, "/c"), [["/c/s/$regex", "operator $regex is not supported"]]);
  t.same(validateConditions({ s: { $in: "a" } }, known, "/c"), [["/c/s/$in", "$in takes a list"]]);
  t.same(validateConditions({ s: { $nin: "a" } }, known, "/c"), [["/c/s/$nin", "$nin takes a list"]]);
  t.same(validateConditions({ s: { $in: ["a", { x: 1 }] } }, known, "/c"), [["/c/s/$in/1", "must be a string, number, boolean or null"]]);
  t.same(validateConditions({ s: { $exists: "yes" } }, known, "/c"), [["/c/s/$exists", "$exists takes true or false"]]);
  t.same(validateConditions({ s: { $eq: [1] } }, known, "/c"), [["/c/s/$eq", "must be a string, number, boolean or null"]]);
  t.same(validateConditions({ s: "${principal.tenant}" }, known, "/c"), [["/c/s", "unknown principal attribute tenant (known: id, region)"]]);
  t.same(validateConditions({ s: "${principal.}" }, known, "/c"), [["/c/s", "malformed placeholder ${principal.}"]]);
  t.same(validateConditions({ s: "x${principal.id}" }, known, "/c"), [["/c/s", "malformed placeholder x${principal.id}"]], "a placeholder is the whole value");
  t.same(validateConditions({ s: "plain $ text {}" }, known, "/c"), [], "a dollar sign alone is text");
  t.equal(validateConditions({ a: { $regex: 1 }, b: { $in: 2 } }, known, "/c").length, 2, "all problems at once");
});

t.test("hasPlaceholder and interpolateConditions (the upstream's packed rules)", async (t) => {
  t.ok(hasPlaceholder({ ownerId: "${principal.id}" }));
  t.ok(hasPlaceholder({ r: { $in: ["a", "${principal.region}"] } }), "inside an operator");
  t.notOk(hasPlaceholder({ ownerId: "u1" }));
  t.notOk(hasPlaceholder(undefined));
  t.same(interpolateConditions({ ownerId: "${principal.id}", status: "paid", r: { $in: ["${principal.region}", "global"] } }, SALES_EU), { ownerId: "u1", status: "paid", r: { $in: ["eu", "global"] } });
  t.same(interpolateConditions({ level: { $lte: "${principal.level}" } }, SALES_EU), { level: { $lte: 3 } }, "numbers stay numbers");
  t.equal(interpolateConditions({ region: "${principal.region}" }, NO_REGION), null, "a missing attribute: the rule grants this principal nothing");
  t.same(interpolateConditions({ r: { $in: ["global", "${principal.region}"] } }, NO_REGION), { r: { $in: ["global"] } }, "an unresolved $in member is left out: the literal one still matches, as in the compiled test");
  t.equal(interpolateConditions({ r: { $nin: ["global", "${principal.region}"] } }, NO_REGION), null, "an unresolved $nin member: the rule grants nothing, as in the compiled test");
  t.same(interpolateConditions({ note: "text with ${principal.id} inside" }, SALES_EU), { note: "text with ${principal.id} inside" }, "only whole-value placeholders are replaced");
  t.same(interpolateConditions({ d: null }, { id: "u", d: null }), { d: null });
  t.same(interpolateConditions({ d: "${principal.d}" }, { id: "u", d: null }), { d: null }, "an attribute that is null is known");
});
