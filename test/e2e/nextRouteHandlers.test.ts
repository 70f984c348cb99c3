// Issue 17: the marketplace's Next.js route handlers guard themselves with
// `requirePermission({ order: ["read"] })` from `gerbang/upstream` — a minimal Next.js 16 app
// (test/fixtures/nextApp) built with `next build`, run under `next start` behind a real gateway.
// The handlers get the gateway's identity (owner's rules ∩ key scopes), filter listings with it, and
// answer 401/403 as JSON themselves to anything that did not come through the gateway.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { freePort } from "../helpers/processes.ts";
import { prepareNextApp, startNextApp } from "../helpers/nextApp.ts";

// Installing and building the app can take a minute on a cold checkout: the tests wait for it.
const setup = (async () => {
  await prepareNextApp();
  const nextPort = await freePort();
  const nextUrl = `http://127.0.0.1:${nextPort}`;
  const pgMissing = await serviceGate("postgres");
  const env = await startGatewayEnv({
    postgres: pgMissing === false,
    config: { upstreams: [{ name: "marketplace", prefix: "/api", url: nextUrl, timeoutMs: 10_000 }] },
  });
  t.teardown(() => env.close());

  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const orders = [
    { id: "ord_user_apac", buyerId: user.userId, region: "apac", status: "pending" },
    { id: "ord_admin_eu", buyerId: admin.userId, region: "eu", status: "shipped" },
    { id: "ord_other_apac", buyerId: "usr_someone_else", region: "apac", status: "pending" },
  ];
  const next = await startNextApp(nextPort, {
    GERBANG_JWKS_URL: `${env.url}/.well-known/jwks.json`,
    GERBANG_AUDIENCE: "marketplace",
    FIXTURE_RECORDS: JSON.stringify({ orders, products: [{ id: "prd_1", name: "Padi seed" }], inventory: [{ productId: "prd_1", quantity: 40 }] }),
  });
  t.teardown(() => next.stop());

  const created = await fetch(`${env.url}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ name: "catalogue feed", scopes: ["catalog:read"], expiresIn: "1d" }),
  });
  if (created.status !== 201) throw new Error(`key creation answered ${created.status}`);
  const { key } = (await created.json()) as { key: string };
  return { env, nextUrl, user, sales, admin, key };
})();

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers });
  return { status: response.status, type: response.headers.get("content-type") ?? "", body: (await response.json()) as Record<string, unknown> };
}
const ids = (body: Record<string, unknown>): string[] => ((body.orders ?? []) as Array<{ id: string }>).map((o) => o.id).sort();

t.test("GET /api/orders through the gateway: each caller's handler lists only what the policy lets them read", async (t) => {
  const { env, user, sales, admin } = await setup;
  const asUser = await getJson(`${env.url}/api/orders`, { authorization: `Bearer ${user.token}` });
  t.equal(asUser.status, 200);
  t.same(ids(asUser.body), ["ord_user_apac"], "a user: their own orders");
  const asSales = await getJson(`${env.url}/api/orders`, { authorization: `Bearer ${sales.token}` });
  t.same(ids(asSales.body), ["ord_admin_eu"], "sales: the orders of their region (eu)");
  const asAdmin = await getJson(`${env.url}/api/orders`, { authorization: `Bearer ${admin.token}` });
  t.same(ids(asAdmin.body), ["ord_admin_eu", "ord_other_apac", "ord_user_apac"], "admin: every order");
});

t.test("POST /api/orders: the handler takes the buyer from the verified identity", async (t) => {
  const { env, user } = await setup;
  const response = await fetch(`${env.url}/api/orders`, {
    method: "POST",
    headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
    body: JSON.stringify({ productId: "prd_1", quantity: 2 }),
  });
  t.equal(response.status, 201);
  t.same(((await response.json()) as { created: unknown }).created, { productId: "prd_1", quantity: 2, buyerId: user.userId });
});

t.test("a permission the gateway's endpoint did not check is the handler's: 403 as JSON, owner's rules ∩ key scopes", async (t) => {
  const { env, user, sales, admin, key } = await setup;
  const keyPlain = await getJson(`${env.url}/api/products`, { "x-api-key": key });
  t.equal(keyPlain.status, 200, "the catalog:read key reads products");
  t.match(keyPlain.body, { authMethod: "api-key", userId: admin.userId });
  const keyStock = await getJson(`${env.url}/api/products?include=inventory`, { "x-api-key": key });
  t.equal(keyStock.status, 403, "its admin owner may read inventory, the key's scopes do not reach it");
  t.match(keyStock.type, /^application\/json/);
  t.same(keyStock.body, { error: "FORBIDDEN", message: "not allowed to read inventory" });
  const userStock = await getJson(`${env.url}/api/products?include=inventory`, { authorization: `Bearer ${user.token}` });
  t.equal(userStock.status, 403, "a user may not read stock levels");
  const salesStock = await getJson(`${env.url}/api/products?include=inventory`, { authorization: `Bearer ${sales.token}` });
  t.equal(salesStock.status, 200, "sales may");
  t.same(salesStock.body.inventory, [{ productId: "prd_1", quantity: 40 }]);
});

t.test("straight to the Next.js app, around the gateway: 401 as JSON, whatever identity headers are claimed", async (t) => {
  const { nextUrl, admin } = await setup;
  const bare = await getJson(`${nextUrl}/api/orders`);
  t.equal(bare.status, 401);
  t.match(bare.type, /^application\/json/);
  t.equal(bare.body.error, "ASSERTION_MISSING");
  const claimed = await getJson(`${nextUrl}/api/orders`, { "x-gerbang-user": admin.userId, "x-gerbang-roles": "admin", "x-gerbang-assertion": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." });
  t.equal(claimed.status, 401, "a forged assertion");
  t.equal(claimed.body.error, "ASSERTION_INVALID");
  t.notOk("orders" in claimed.body, "and no data");
});
