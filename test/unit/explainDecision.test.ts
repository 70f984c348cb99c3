// `policy explain` on the shipped version: the same decision as the gateway's, with each rule CASL
// weighed in precedence order, every condition operator with the values it compared, the deciding
// rule, and every blocked field (the 403 names only the first).
import t from "tap";
import { join } from "node:path";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { AbilityCache } from "../../src/policy/abilityCache.ts";
import { decideRequest, type RequestPrincipal, type StatedRequest } from "../../src/policy/decideRequest.ts";
import { explainRequest, formatExplanation } from "../../src/policy/explainDecision.ts";

const cache = new AbilityCache(loadPolicySet(join(new URL("../../policies/", import.meta.url).pathname, "2026-12-01")));
const as = (roles: string[], attributes: Record<string, string> = {}, scopes: string[] | null = null): RequestPrincipal => ({ roles, attributes, scopes, anonymous: roles.join() === "anonymous" });
const ORDER = { id: "ord_1", buyerId: "u1", region: "eu", status: "pending" };

t.test("a condition not met shows the attribute, the operator, the value written, the value it resolved to and the resource's", async (t) => {
  const e = explainRequest(cache, as(["sales"], { id: "s2", region: "us" }), { method: "GET", path: "/api/orders/ord_1", resource: ORDER });
  t.match(e.outcome, { status: 403, reason: "CONDITIONS_NOT_MET", ruleId: null, endpointId: "orders.get" });
  t.same(e.endpoint, { id: "orders.get", action: "read", subject: "Order", resourceFrom: "resolver", fieldsFromBody: false });
  t.same(e.rules, [
    {
      id: "sales.orders.read-region",
      role: "sales",
      effect: "allow",
      conditions: [{ attribute: "region", operator: "$eq", written: "${principal.region}", expected: "us", actual: "eu", met: false }],
      conditionsMet: false,
      fields: null,
      uncoveredFields: [],
      decided: false,
    },
  ]);
  t.same(e.otherRules, ["sales.products.read", "sales.shops.read", "sales.orders.update-status-region", "sales.inventory.read"]);
  const text = formatExplanation(e);
  t.match(text, /decision: deny 403 CONDITIONS_NOT_MET\n/);
  t.match(text, /FAIL region \$eq "\$\{principal\.region\}" = "us"; resource has "eu"/);
});

t.test("a missing principal attribute is shown as missing and never matches", async (t) => {
  const e = explainRequest(cache, as(["sales"]), { method: "GET", path: "/api/orders/ord_1", resource: ORDER });
  t.same(e.rules[0]?.conditions, [{ attribute: "region", operator: "$eq", written: "${principal.region}", expected: undefined, actual: "eu", met: false }]);
  t.match(formatExplanation(e), /region \$eq "\$\{principal\.region\}" = \(missing\); resource has "eu"/);
});

t.test("the deciding rule is marked, and every blocked field is listed", async (t) => {
  const e = explainRequest(cache, as(["user"], { id: "u1" }), { method: "PATCH", path: "/api/orders/ord_1", body: { status: "x", notes: "y", shippingAddress: "z" }, resource: ORDER });
  t.match(e.outcome, { status: 403, reason: "FIELD_NOT_PERMITTED", field: "status" });
  t.same(e.blockedFields, ["status", "notes"]);
  const rule = e.rules.find((r) => r.id === "user.orders.update-shipping-while-pending");
  t.match(rule, { conditionsMet: true, fields: ["shippingAddress"], uncoveredFields: ["status", "notes"] });
  const deny = explainRequest(cache, as(["user"], { id: "u1" }), { method: "PATCH", path: "/api/shops/s1", body: { ownerId: "u2" }, resource: { ownerId: "u1" } });
  t.same(deny.rules.map((r) => [r.id, r.effect, r.decided]), [["user.shops.owner-immutable", "deny", true], ["user.shops.manage-own", "allow", false]], "deny rules take precedence");
  t.match(formatExplanation(deny), /\* user\.shops\.owner-immutable \[user\] deny fields ownerId: DECIDED/);
});

t.test("an API key's scope rules are traced beside its owner's", async (t) => {
  const e = explainRequest(cache, as(["partner"], {}, ["catalog:read"]), { method: "GET", path: "/api/inventory" });
  t.match(e.outcome, { status: 403, reason: "OUTSIDE_KEY_SCOPE" });
  t.same(e.rules.map((r) => r.id), ["partner.inventory.read"]);
  t.same(e.scopeRules, [], "no scope rule for read Inventory");
  t.match(formatExplanation(e), /the key's scope rules \(must allow it too\): none/);
});

t.test("no endpoint: said so, with nothing weighed", async (t) => {
  const e = explainRequest(cache, as(["admin"]), { method: "GET", path: "/api/nothing" });
  t.same([e.endpoint, e.rules, e.outcome.reason], [null, [], "ENDPOINT_NOT_MAPPED"]);
  t.match(formatExplanation(e), /GET \/api\/nothing: no endpoint matches/);
});

t.test("explain always agrees with the decision the gateway makes", async (t) => {
  const requests: Array<[RequestPrincipal, StatedRequest]> = [
    [as(["anonymous"]), { method: "GET", path: "/api/products" }],
    [as(["user"], { id: "u1" }), { method: "DELETE", path: "/api/shops/s1", resource: { ownerId: "u2" } }],
    [as(["sales"], { region: "eu" }), { method: "PATCH", path: "/api/orders/ord_1", body: { status: "shipped" }, resource: ORDER }],
    [as(["admin"]), { method: "POST", path: "/api/admin/x" }],
  ];
  for (const [principal, request] of requests) t.same(explainRequest(cache, principal, request).outcome, decideRequest(cache, principal, request));
});

t.test("values are shown as JSON data: markup in a path or attribute stays text", async (t) => {
  const e = explainRequest(cache, as(["sales"], { region: "<img src=x onerror=alert(1)>" }), { method: "GET", path: "/api/orders/<script>", resource: { region: "</pre>" } });
  const text = formatExplanation(e);
  t.match(text, /= "<img src=x onerror=alert\(1\)>"; resource has "<\/pre>"/);
});
