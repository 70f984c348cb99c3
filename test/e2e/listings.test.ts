// Listings (issue 17): GET /api/orders and /api/shops are `resource: { from: filter }` endpoints. The
// gateway lets a caller through when some record could be read; the demo upstream selects which ones
// with the signed assertion's rules through gerbang/upstream. Real gateway, real upstream process.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type SignedIn } from "../helpers/gatewayEnv.ts";

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());

const call = async (method: string, path: string, who: SignedIn | { "x-api-key": string } | null, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
  const headers: Record<string, string> = { origin: env.url };
  if (who !== null && "token" in who) headers.authorization = `Bearer ${who.token}`;
  else if (who !== null) headers["x-api-key"] = who["x-api-key"];
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${env.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
};
const created = async (method: string, path: string, who: SignedIn, body: unknown): Promise<string> => {
  const { status, json } = await call(method, path, who, body);
  if (status !== 201 || typeof json.id !== "string") throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json)}`);
  return json.id;
};

const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const buyer = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");

const euShop = await created("POST", "/api/shops", user, { name: "Tani Eropa", region: "eu" });
const apacShop = await created("POST", "/api/shops", buyer, { name: "Tani Asia", region: "apac" });
const product = await created("POST", `/api/shops/${euShop}/products`, user, { name: "Beras", priceCents: 1200 });
const buyerEu = await created("POST", "/api/orders", buyer, { productId: product, quantity: 1, shippingAddress: "Jl. Sawah 1" });
const buyerApac = await created("POST", "/api/orders", buyer, { productId: product, quantity: 2, shippingAddress: "Jl. Sawah 1", region: "apac" });
const userEu = await created("POST", "/api/orders", user, { productId: product, quantity: 3, shippingAddress: "Jl. Kebun 2" });

const idsOf = (json: Record<string, unknown>, key: string): string[] => ((json[key] as Array<{ id: string }> | undefined) ?? []).map((r) => r.id).sort();

t.test("GET /api/orders holds exactly the orders each caller may read", async (t) => {
  const mine = await call("GET", "/api/orders", buyer);
  t.equal(mine.status, 200);
  t.same(idsOf(mine.json, "orders"), [buyerEu, buyerApac].sort(), "a buyer: their own orders, in every region");
  t.same(idsOf((await call("GET", "/api/orders", user)).json, "orders"), [userEu], "another user: only theirs");
  t.same(idsOf((await call("GET", "/api/orders", sales)).json, "orders"), [buyerEu, userEu].sort(), "sales (eu): every order of their region, nobody else's");
  t.same(idsOf((await call("GET", "/api/orders", admin)).json, "orders"), [buyerEu, buyerApac, userEu].sort(), "an admin: all");
  for (const id of idsOf((await call("GET", "/api/orders", sales)).json, "orders")) {
    t.equal((await call("GET", `/api/orders/${id}`, sales)).status, 200, `each listed order is readable one by one too (${id})`);
  }
  t.equal((await call("GET", `/api/orders/${buyerApac}`, sales)).status, 403, "and the one not listed is refused one by one");
});

t.test("who may not list at all is refused by the gateway", async (t) => {
  const anonymous = await call("GET", "/api/orders", null);
  t.equal(anonymous.status, 401, "anonymous: sign in first");
  const key = await call("POST", "/api/keys", admin, { name: "catalogue feed", scopes: ["catalog:read"], expiresIn: "1d" });
  t.equal(key.status, 201);
  const byKey = await call("GET", "/api/orders", { "x-api-key": String(key.json.key) });
  t.equal(byKey.status, 403, "an admin's catalog:read key cannot list orders (owner ∩ scopes)");
});

t.test("GET /api/shops: every shop for a signed-in user (user.shops.read has no condition)", async (t) => {
  const shops = await call("GET", "/api/shops", buyer);
  t.equal(shops.status, 200);
  t.same(idsOf(shops.json, "shops"), [euShop, apacShop].sort());
});
