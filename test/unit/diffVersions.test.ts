// `policy diff`: derived from the two compiled versions, exhaustive over role × endpoint × method, with
// rule-level changes; and the replay of recorded decisions under another version.
import t from "tap";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { diffVersions, formatDiff } from "../../src/policy/diffVersions.ts";
import { replayDecision } from "../../src/policy/replayDecision.ts";
import { AbilityCache } from "../../src/policy/abilityCache.ts";
import { writeStricterVersion } from "../helpers/policyVersions.ts";

const SHIPPED = new URL("../../policies/", import.meta.url).pathname;

function workspace(t: { teardown(fn: () => void): void }): string {
  const root = mkdtempSync(join(tmpdir(), "gerbang-diff-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(join(SHIPPED, "2026-12-01"), join(root, "2026-12-01"), { recursive: true });
  return root;
}

t.test("a version identical in permissions has an empty diff, and every cell was compared", async (t) => {
  const diff = diffVersions(loadPolicySet(join(SHIPPED, "2026-11-27")), loadPolicySet(join(SHIPPED, "2026-12-01")));
  t.same([diff.cells, diff.rules], [[], []]);
  // 5 roles × 20 (endpoint, method) pairs: admin.any's `*` is one method.
  t.equal(diff.compared, 100);
});

t.test("taking a grant away: allow→deny for exactly the cells it decided, and the rule removed", async (t) => {
  const root = workspace(t);
  writeStricterVersion(root, "2026-12-01", "2026-12-02", { updateTest: true });
  const diff = diffVersions(loadPolicySet(join(root, "2026-12-01")), loadPolicySet(join(root, "2026-12-02")));
  t.same(
    diff.cells.map((c) => [c.change, c.role, c.method, c.endpoint, c.from.rules, c.to.rules]),
    [
      ["allow→deny", "anonymous", "GET", "products.get", ["anonymous.products.read"], []],
      ["allow→deny", "anonymous", "GET", "products.list", ["anonymous.products.read"], []],
    ],
  );
  t.same(diff.rules.map((r) => [r.change, r.id, r.role]), [["removed", "anonymous.products.read", "anonymous"]]);
  t.match(formatDiff(diff), /2 of 100 role × endpoint × method cells changed\n {2}allow→deny +anonymous +GET +products\.get: allow \[anonymous\.products\.read\] -> deny \[no rule\]/);
});

t.test("a changed condition, a new grant and a remapped endpoint are each named", async (t) => {
  const root = workspace(t);
  const next = join(root, "2026-12-02");
  cpSync(join(root, "2026-12-01"), next, { recursive: true });
  const edit = (file: string, from: string, to: string): void => writeFileSync(join(next, file), readFileSync(join(next, file), "utf8").replace(from, to));
  edit("manifest.yaml", 'version: "2026-12-01"', 'version: "2026-12-02"');
  // Sales may read orders of every region now, but only pending ones.
  edit("roles/sales.yaml", "      region: ${principal.region}\n  - id: sales.orders.update", "      status: pending\n  - id: sales.orders.update");
  // Users may read inventory.
  edit("roles/user.yaml", "rules:\n", "rules:\n  - id: user.inventory.read\n    action: read\n    subject: Inventory\n");
  // The inventory endpoint now means another action.
  edit("endpoints/marketplace.yaml", "    path: /api/inventory\n    action: read", "    path: /api/inventory\n    action: list");
  edit("subjects.yaml", "  - name: Inventory\n    actions: [read]", "  - name: Inventory\n    actions: [read, list]");
  // Deleting a shop now reads the owner from the body: whoever names themselves owner may delete it.
  edit("endpoints/marketplace.yaml", "    action: delete\n    subject: Shop\n    resource: { from: resolver, id: shopId }", "    action: delete\n    subject: Shop\n    resource: { from: body }");
  const diff = diffVersions(loadPolicySet(join(root, "2026-12-01")), loadPolicySet(next));
  const changes = diff.cells.map((c) => `${c.change} ${c.role} ${c.method} ${c.endpoint}`);
  t.ok(changes.includes("conditions changed sales GET orders.get"), "the same rule id with another condition");
  t.same(diff.cells.filter((c) => c.endpoint === "inventory.list").map((c) => [c.role, c.change]), [["admin", "mapping changed"], ["anonymous", "mapping changed"], ["partner", "mapping changed"], ["sales", "mapping changed"], ["user", "mapping changed"]]);
  t.same(diff.cells.filter((c) => c.endpoint === "shops.delete").map((c) => c.change), ["mapping changed", "mapping changed", "mapping changed", "mapping changed", "mapping changed"], "where the resource comes from is part of what an endpoint means");
  t.same(
    diff.rules.map((r) => [r.change, r.id]),
    [["changed", "sales.orders.read-region"], ["added", "user.inventory.read"]],
  );
  t.same(diff.rules[0]?.to?.conditions, { status: "pending" });
});

t.test("replay: a recorded decision decided again under another version, with the attributes recorded with it", async (t) => {
  const root = workspace(t);
  writeStricterVersion(root, "2026-12-01", "2026-12-02", { updateTest: true });
  const stricter = new AbilityCache(loadPolicySet(join(root, "2026-12-02")));
  const anonymous = { roles: ["anonymous"], attributes: {}, scopes: null, anonymous: true };
  const read = replayDecision(stricter, { requestId: "r1", method: "GET", path: "/api/products/p1", principal: anonymous, allowed: true, resource: null, resourceFrom: null, fields: null });
  t.match(read, { decided: true, decision: { allowed: false, reason: "NO_MATCHING_RULE" }, endpointId: "products.get" });
  const sales = { roles: ["sales"], attributes: { id: "s1", region: "eu" }, scopes: null, anonymous: false };
  const order = replayDecision(stricter, { requestId: "r2", method: "GET", path: "/api/orders/o1", principal: sales, allowed: true, resource: { region: "eu" }, resourceFrom: "resolver", fields: null });
  t.match(order, { decided: true, decision: { allowed: true, ruleId: "sales.orders.read-region" } });
  const unread = replayDecision(stricter, { requestId: "r3", method: "GET", path: "/api/orders/o1", principal: sales, allowed: false, resource: null, resourceFrom: null, fields: null });
  t.match(unread, { decided: false, why: /needs the resource's attributes/ }, "never guesses attributes it does not have");
  const fields = replayDecision(stricter, { requestId: "r4", method: "PATCH", path: "/api/orders/o1", principal: sales, allowed: true, resource: { region: "eu" }, resourceFrom: "resolver", fields: ["shippingAddress"] });
  t.match(fields, { decided: true, decision: { allowed: false, reason: "FIELD_NOT_PERMITTED", field: "shippingAddress" } });
  const elsewhere = replayDecision(stricter, { requestId: "r5", method: "GET", path: "/api/orders/o1", principal: sales, allowed: true, resource: { orderId: "o1" }, resourceFrom: "params", fields: null });
  t.match(elsewhere, { decided: false, why: /reads the resource from resolver, where the recorded decision read it from params/ }, "attributes from another source are not reused");
  const noFields = replayDecision(stricter, { requestId: "r6", method: "PATCH", path: "/api/orders/o1", principal: sales, allowed: false, resource: { region: "eu" }, resourceFrom: "resolver", fields: null });
  t.match(noFields, { decided: false, why: /needs the body's field names/ }, "fields never read are not taken as none");
});
