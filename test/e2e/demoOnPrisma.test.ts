// Issue 17: the demo marketplace runs either resolver. Here `gerbang demo-upstream --database-url`
// keeps its data in the marketplace's own tables (prisma/marketplace, migrated by the upstream), the
// gateway reads ownership from them with the Prisma resolver through a read-only role, and the
// upstream's GET /api/orders selects rows with gerbang/upstream's prismaWhere. Real processes and
// PostgreSQL throughout; the rows are checked with SQL.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { createMarketplaceDatabase, grantRoles } from "../helpers/marketplaceDatabase.ts";

const pgMissing = await serviceGate("postgres");
if (pgMissing !== false) throw new Error(`PostgreSQL is required: ${pgMissing}`);
// Empty: the demo upstream migrates it when it starts, before the gateway's resolver probes it.
const db = await createMarketplaceDatabase({ migrate: false });
t.teardown(() => db.drop());
const subjects = { Order: { model: "Order", attributes: ["buyerId", "region", "status"] }, Shop: { model: "Shop", attributes: ["ownerId", "region"] } };
let granted = false;
const env = await startGatewayEnv({
  postgres: true,
  upstreamArgs: ["--database-url", db.url],
  upstreamResolver: { prisma: { databaseUrl: db.urlAs(db.reader), subjects } },
  // The grants need the tables, which exist once the upstream has started (before the gateway).
  beforeGateways: async () => {
    await grantRoles(db);
    granted = true;
  },
});
t.teardown(() => env.close());
const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const buyer = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${env.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

t.test("writes through the gateway land in the marketplace's tables, and ownership is read back from them", async (t) => {
  t.ok(granted);
  const shop = await call("POST", "/api/shops", user.token, { name: "Kebun Sari", region: "eu" });
  t.equal(shop.status, 201);
  const shopId = String(shop.json.id);
  const product = await call("POST", `/api/shops/${shopId}/products`, user.token, { name: "Shallots, 10 kg", priceCents: 2400 });
  t.equal(product.status, 201, "the owner adds a product (ownership of the shop read from the shop table)");
  t.equal((await call("POST", `/api/shops/${shopId}/products`, buyer.token, { name: "x", priceCents: 1 })).status, 403, "another user may not");
  const order = await call("POST", "/api/orders", buyer.token, { productId: product.json.id, quantity: 2, shippingAddress: "Jl. Merdeka 1" });
  t.equal(order.status, 201);
  const orderId = String(order.json.id);
  const { rows } = await db.owner.query(`SELECT buyer_id, region, status FROM "order" WHERE id = $1`, [orderId]);
  t.same(rows, [{ buyer_id: buyer.userId, region: "eu", status: "pending" }], "the row, as SQL sees it");

  t.equal((await call("GET", `/api/orders/${orderId}`, buyer.token)).status, 200, "the buyer reads it");
  t.equal((await call("GET", `/api/orders/${orderId}`, user.token)).status, 403, "another user does not");
  t.equal((await call("GET", `/api/orders/${orderId}`, sales.token)).status, 200, "sales of its region (eu) do");
  t.equal((await call("PATCH", `/api/orders/${orderId}`, buyer.token, { shippingAddress: "Jl. Baru 2" })).status, 200, "the buyer changes the address while it is pending");
  t.equal((await call("PATCH", `/api/orders/${orderId}`, sales.token, { status: "shipped" })).status, 200, "sales ship it");
  const after = await db.owner.query(`SELECT shipping_address, status FROM "order" WHERE id = $1`, [orderId]);
  t.same(after.rows, [{ shipping_address: "Jl. Baru 2", status: "shipped" }]);
  t.equal((await call("PATCH", `/api/orders/${orderId}`, buyer.token, { shippingAddress: "Jl. Lain 3" })).status, 403, "shipped: the resolver reads the new status");
  const seen = (await (await fetch(`${env.upstreamUrl}/__demo/received`)).json()) as Array<{ url: string }>;
  t.ok(seen.some((r) => r.url.startsWith("/api/orders")), "the upstream's record of what it received");
  t.equal(seen.filter((r) => r.url.startsWith("/.well-known/gerbang/")).length, 0, "and it was never asked for attributes");
});

t.test("GET /api/orders selects rows with the caller's rules (prismaWhere)", async (t) => {
  const ids = (json: Record<string, unknown>): string[] => ((json.orders ?? []) as Array<{ id: string }>).map((o) => o.id);
  await db.owner.query(`INSERT INTO "order" (id, buyer_id, product_id, quantity, region, status) VALUES ('ord_sql_apac', $1, 'prd_x', 1, 'apac', 'pending'), ('ord_sql_none', 'usr_other', 'prd_x', 1, NULL, 'pending')`, [buyer.userId]);
  const asBuyer = await call("GET", "/api/orders", buyer.token);
  t.equal(asBuyer.status, 200);
  const mine = (await db.owner.query(`SELECT id FROM "order" WHERE buyer_id = $1 ORDER BY id`, [buyer.userId])).rows.map((r: { id: string }) => r.id);
  t.ok(mine.includes("ord_sql_apac"), "rows written behind the upstream's back are listed too: the query reads the table");
  t.same(ids(asBuyer.json).filter((id) => id.startsWith("ord_sql")), ["ord_sql_apac"]);
  const asSales = await call("GET", "/api/orders", sales.token);
  t.notOk(ids(asSales.json).includes("ord_sql_apac"), "not another region's");
  t.notOk(ids(asSales.json).includes("ord_sql_none"), "nor one without a region (NULL never equals)");
  const euCount = Number((await db.owner.query(`SELECT count(*) FROM "order" WHERE region = 'eu'`)).rows[0].count);
  t.equal(ids(asSales.json).length, euCount, "exactly the eu rows");
});
