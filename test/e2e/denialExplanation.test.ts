// Why a request was denied, where it may be seen: every audit row records the endpoint, the deciding
// rule, the blocked fields and the decision's inputs (bounded); a 403 carries `error.details` only for
// the roles in policy.denialDetailsFor, never for anyone else.
import t from "tap";
import pg from "pg";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";

const pgMissing = await serviceGate("postgres");
t.test("denial details and the audit row's explanation", { skip: pgMissing }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, config: { policy: { denialDetailsFor: ["user"] } } });
  t.teardown(() => env.close());
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  const owner = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const call = async (token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: { id?: string; error?: { reason?: string; requestId: string; details?: unknown } } }> => {
    const response = await fetch(`${env.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as never };
  };

  const shop = await call(owner.token, "POST", "/api/shops", { name: "Kebun Sari", region: "eu" });
  t.equal(shop.status, 201);
  const shopId = shop.json.id ?? "";
  // The owner may rename the shop (and set its region) but not transfer it.
  const transfer = await call(owner.token, "PATCH", `/api/shops/${shopId}`, { name: "Kebun Baru", ownerId: sales.userId, region: "us" });
  t.equal(transfer.status, 403);
  t.same(transfer.json.error?.details, { version: "2026-12-07", endpoint: "shops.update", rule: "user.shops.owner-immutable", blockedFields: ["ownerId"] }, "a role in denialDetailsFor sees why");

  const salesDenied = await call(sales.token, "PATCH", `/api/shops/${shopId}`, { name: "x" });
  t.equal(salesDenied.status, 403);
  t.equal(salesDenied.json.error?.reason, "NO_MATCHING_RULE");
  t.equal(salesDenied.json.error?.details, undefined, "any other role gets the reason id only");

  type Row = { endpoint_id: string | null; rule_id: string | null; blocked_fields: string | null; decision_input: { resource?: Record<string, unknown>; fields?: string[]; scopes?: string[] } | null; reason: string };
  const rowOf = async (requestId: string): Promise<Row | undefined> => {
    for (let i = 0; i < 50; i++) {
      const { rows } = await db.query<Row>("SELECT endpoint_id, rule_id, blocked_fields, decision_input, reason FROM audit_event WHERE request_id = $1", [requestId]);
      if (rows[0] !== undefined) return rows[0];
      await new Promise((r) => setTimeout(r, 100));
    }
    return undefined;
  };
  const row = await rowOf(transfer.json.error?.requestId ?? "");
  t.match(row, { endpoint_id: "shops.update", rule_id: "user.shops.owner-immutable", blocked_fields: "ownerId", reason: "FIELD_NOT_PERMITTED" });
  t.same(row?.decision_input?.fields, ["name", "ownerId", "region"], "the body's field names");
  t.match(row?.decision_input?.resource, { id: shopId, ownerId: owner.userId }, "the resource's attributes as the resolver gave them");
  t.equal(row?.decision_input?.scopes, undefined, "a session has no scopes");
  t.notOk(JSON.stringify(row?.decision_input).includes("Kebun Baru"), "body values are not kept");
  const salesRow = await rowOf(salesDenied.json.error?.requestId ?? "");
  t.match(salesRow, { endpoint_id: "shops.update", rule_id: null, blocked_fields: null, reason: "NO_MATCHING_RULE" }, "audit rows always explain, whoever asked");
  t.equal(salesRow?.decision_input, null, "refused before the resource was read: nothing more to keep");

  // A body with hundreds of keys: the row keeps its size, not its field names.
  const wide = await call(owner.token, "PATCH", `/api/shops/${shopId}`, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`field_${i}`, i])));
  t.equal(wide.status, 200);
  let kept: { truncated?: boolean; bytes?: number } | undefined;
  for (let i = 0; i < 50 && kept === undefined; i++) {
    const { rows } = await db.query<{ decision_input: { truncated?: boolean; bytes?: number } }>("SELECT decision_input FROM audit_event WHERE path = $1 AND allowed AND method = 'PATCH'", [`/api/shops/${shopId}`]);
    kept = rows[0]?.decision_input;
    if (kept === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(kept?.truncated, true);
  t.ok((kept?.bytes ?? 0) > 2048, "and says how large it was");
});
