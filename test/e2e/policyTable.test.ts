// Every cell of the example policy table, end to end: a real gateway process in front of a real
// upstream process (which verifies the signed assertion), checking the status the client gets and
// exactly what the upstream received.
import t, { type Test } from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type SignedIn } from "../helpers/gatewayEnv.ts";

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
t.comment(`database: ${pgMissing === false ? "PostgreSQL" : `embedded (${pgMissing})`}`);

type Who = "anonymous" | "owner" | "other" | "sales" | "admin";
const users: Record<Exclude<Who, "anonymous">, SignedIn> = {
  owner: await env.signIn("user@demo.gerbang.dev", "demo-user-password"),
  other: await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password"),
  sales: await env.signIn("sales@demo.gerbang.dev", "demo-sales-password"),
  admin: await env.signIn("admin@demo.gerbang.dev", "demo-admin-password"),
};
const ROLES: Record<Who, string> = { anonymous: "anonymous", owner: "user", other: "user", sales: "sales", admin: "admin" };

interface Result {
  status: number;
  json: Record<string, unknown>;
}

async function call(who: Who, method: string, path: string, body?: unknown): Promise<Result> {
  const headers: Record<string, string> = {};
  if (who !== "anonymous") headers.authorization = `Bearer ${users[who].token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${env.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Sends one request and checks the status and what reached the upstream. */
async function cell(tt: Test, who: Who, method: string, path: string, expected: number, body?: unknown, reason?: string): Promise<Result> {
  await env.clearReceived();
  const result = await call(who, method, path, body);
  const label = `${method} ${path} as ${who}`;
  tt.equal(result.status, expected, `${label} → ${expected}`, { body: result.json });
  const received = await env.received();
  if (expected < 400) {
    tt.equal(received.length, 1, `${label}: upstream received exactly one request`);
    const got = received[0];
    if (got !== undefined) {
      tt.equal(got.method, method, `${label}: method forwarded`);
      tt.equal(got.url, path, `${label}: the authorized path is the forwarded path`);
      tt.equal(got.headers["x-gerbang-user"], who === "anonymous" ? undefined : users[who].userId, `${label}: x-gerbang-user`);
      tt.equal(got.headers["x-gerbang-roles"], ROLES[who], `${label}: x-gerbang-roles`);
      tt.equal(got.headers["x-gerbang-auth"], who === "anonymous" ? "anonymous" : "session", `${label}: x-gerbang-auth`);
      tt.equal(got.headers["x-gerbang-policy"], "2026-12-07", `${label}: x-gerbang-policy`);
      tt.equal(got.headers.authorization, undefined, `${label}: credentials not forwarded`);
      tt.ok(got.headers["x-gerbang-assertion"], `${label}: signed assertion present`);
      tt.ok(got.headers["x-request-id"], `${label}: request id present`);
    }
  } else {
    tt.equal(received.length, 0, `${label}: upstream received nothing`);
    const error = result.json.error as { code?: string; reason?: string } | undefined;
    tt.equal(error?.code, expected === 401 ? "UNAUTHENTICATED" : expected === 403 ? "FORBIDDEN" : error?.code, `${label}: error code`);
    if (reason !== undefined) tt.equal(error?.reason, reason, `${label}: reason`);
  }
  return result;
}

const id = (r: Result): string => String(r.json.id);

t.test("the example policy table, cell by cell", async (t) => {
  // Fixtures are created through the gateway, so each creation is itself a table cell.
  const shop = id(await cell(t, "owner", "POST", "/api/shops", 201, { name: "Kebun Sari", region: "eu" }));
  const adminShop = id(await cell(t, "admin", "POST", "/api/shops", 201, { name: "Admin shop", region: "apac" }));
  const product = id(await cell(t, "owner", "POST", `/api/shops/${shop}/products`, 201, { name: "Shallots", priceCents: 2400 }));
  const order = id(await cell(t, "owner", "POST", "/api/orders", 201, { productId: product, quantity: 2, shippingAddress: "Jl. Merdeka 1", region: "eu" }));
  const apacOrder = id(await cell(t, "admin", "POST", "/api/orders", 201, { productId: product, quantity: 1, shippingAddress: "1 Orchard Rd", region: "apac" }));

  await t.test("GET /api/products and /api/products/:productId: everyone", async (t) => {
    for (const who of ["anonymous", "owner", "sales", "admin"] as const) {
      await cell(t, who, "GET", "/api/products", 200);
      await cell(t, who, "GET", `/api/products/${product}`, 200);
    }
  });

  await t.test("POST /api/shops: 401 / ✓ / ✗ / ✓", async (t) => {
    await cell(t, "anonymous", "POST", "/api/shops", 401, { name: "x" });
    await cell(t, "sales", "POST", "/api/shops", 403, { name: "x" }, "NO_MATCHING_RULE");
    // user and admin: created above as fixtures.
  });

  await t.test("GET /api/shops/:shopId: 401 / ✓ / ✓ / ✓", async (t) => {
    await cell(t, "anonymous", "GET", `/api/shops/${shop}`, 401);
    for (const who of ["owner", "other", "sales", "admin"] as const) await cell(t, who, "GET", `/api/shops/${shop}`, 200);
  });

  await t.test("PATCH, DELETE /api/shops/:shopId: only the owner among users", async (t) => {
    await cell(t, "anonymous", "PATCH", `/api/shops/${shop}`, 401, { name: "x" });
    await cell(t, "other", "PATCH", `/api/shops/${shop}`, 403, { name: "x" }, "CONDITIONS_NOT_MET");
    await cell(t, "sales", "PATCH", `/api/shops/${shop}`, 403, { name: "x" }, "NO_MATCHING_RULE");
    await cell(t, "owner", "PATCH", `/api/shops/${shop}`, 200, { name: "Kebun Sari Organics" });
    await cell(t, "owner", "PATCH", `/api/shops/${shop}`, 403, { ownerId: users.other.userId }, "FIELD_NOT_PERMITTED");
    await cell(t, "admin", "PATCH", `/api/shops/${shop}`, 200, { name: "Renamed by admin" });
    await cell(t, "owner", "PATCH", `/api/shops/${adminShop}`, 403, { name: "x" }, "CONDITIONS_NOT_MET");

    const doomed = id(await cell(t, "owner", "POST", "/api/shops", 201, { name: "Doomed" }));
    await cell(t, "anonymous", "DELETE", `/api/shops/${doomed}`, 401);
    await cell(t, "other", "DELETE", `/api/shops/${doomed}`, 403, undefined, "CONDITIONS_NOT_MET");
    await cell(t, "sales", "DELETE", `/api/shops/${doomed}`, 403, undefined, "NO_MATCHING_RULE");
    await cell(t, "owner", "DELETE", `/api/shops/${doomed}`, 200);
    const doomed2 = id(await cell(t, "other", "POST", "/api/shops", 201, { name: "Doomed 2" }));
    await cell(t, "admin", "DELETE", `/api/shops/${doomed2}`, 200);
    // The resolver's 404 becomes the gateway's 404, and nothing is forwarded.
    await cell(t, "owner", "DELETE", `/api/shops/${doomed}`, 404);
  });

  await t.test("POST /api/shops/:shopId/products: only the shop's owner among users", async (t) => {
    const body = { name: "Chili", priceCents: 900 };
    await cell(t, "anonymous", "POST", `/api/shops/${shop}/products`, 401, body);
    await cell(t, "other", "POST", `/api/shops/${shop}/products`, 403, body, "CONDITIONS_NOT_MET");
    await cell(t, "sales", "POST", `/api/shops/${shop}/products`, 403, body, "NO_MATCHING_RULE");
    await cell(t, "owner", "POST", `/api/shops/${shop}/products`, 201, body);
    await cell(t, "admin", "POST", `/api/shops/${shop}/products`, 201, body);
  });

  await t.test("POST /api/orders: 401 / ✓ / ✗ / ✓", async (t) => {
    const body = { productId: product, quantity: 1, shippingAddress: "x", region: "eu" };
    await cell(t, "anonymous", "POST", "/api/orders", 401, body);
    await cell(t, "sales", "POST", "/api/orders", 403, body, "NO_MATCHING_RULE");
    await cell(t, "other", "POST", "/api/orders", 201, body);
  });

  await t.test("GET /api/orders/:orderId: buyer, sales of the region, admin", async (t) => {
    await cell(t, "anonymous", "GET", `/api/orders/${order}`, 401);
    await cell(t, "owner", "GET", `/api/orders/${order}`, 200);
    await cell(t, "other", "GET", `/api/orders/${order}`, 403, undefined, "CONDITIONS_NOT_MET");
    await cell(t, "sales", "GET", `/api/orders/${order}`, 200);
    await cell(t, "sales", "GET", `/api/orders/${apacOrder}`, 403, undefined, "CONDITIONS_NOT_MET");
    await cell(t, "admin", "GET", `/api/orders/${order}`, 200);
    await cell(t, "owner", "GET", "/api/orders/ord_does_not_exist", 404);
  });

  await t.test("PATCH /api/orders/:orderId: field- and state-level rules", async (t) => {
    await cell(t, "anonymous", "PATCH", `/api/orders/${order}`, 401, { shippingAddress: "x" });
    await cell(t, "owner", "PATCH", `/api/orders/${order}`, 200, { shippingAddress: "Jl. Asia Afrika 8" });
    await cell(t, "owner", "PATCH", `/api/orders/${order}`, 403, { status: "cancelled" }, "FIELD_NOT_PERMITTED");
    await cell(t, "owner", "PATCH", `/api/orders/${order}`, 403, { shippingAddress: "x", notes: "x" }, "FIELD_NOT_PERMITTED");
    await cell(t, "other", "PATCH", `/api/orders/${order}`, 403, { shippingAddress: "x" }, "CONDITIONS_NOT_MET");
    await cell(t, "sales", "PATCH", `/api/orders/${order}`, 403, { shippingAddress: "x" }, "FIELD_NOT_PERMITTED");
    await cell(t, "sales", "PATCH", `/api/orders/${apacOrder}`, 403, { status: "shipped" }, "CONDITIONS_NOT_MET");
    await cell(t, "sales", "PATCH", `/api/orders/${order}`, 200, { status: "shipped", notes: "left the warehouse" });
    // Once shipped, the buyer may no longer change the address: writes are decided on fresh attributes.
    await cell(t, "owner", "PATCH", `/api/orders/${order}`, 403, { shippingAddress: "too late" }, "CONDITIONS_NOT_MET");
    await cell(t, "admin", "PATCH", `/api/orders/${order}`, 200, { shippingAddress: "admin fixed it", status: "delivered" });
  });

  await t.test("GET /api/inventory: sales and admin", async (t) => {
    await cell(t, "anonymous", "GET", "/api/inventory", 401);
    await cell(t, "owner", "GET", "/api/inventory", 403, undefined, "NO_MATCHING_RULE");
    await cell(t, "sales", "GET", "/api/inventory", 200);
    await cell(t, "admin", "GET", "/api/inventory", 200);
  });

  await t.test("any method on /api/admin and below: admin only", async (t) => {
    for (const [method, path] of [["GET", "/api/admin"], ["GET", "/api/admin/stats"], ["POST", "/api/admin/users/disable"], ["DELETE", "/api/admin/x"]] as const) {
      const body = method === "POST" ? {} : undefined;
      await cell(t, "anonymous", method, path, 401, body);
      await cell(t, "owner", method, path, 403, body, "NO_MATCHING_RULE");
      await cell(t, "sales", method, path, 403, body, "NO_MATCHING_RULE");
      await cell(t, "admin", method, path, 200, body);
    }
  });

  await t.test("unknown routes are denied, also for admin", async (t) => {
    for (const who of ["anonymous", "owner", "admin"] as const) {
      await cell(t, who, "GET", "/api/administrator", 403, undefined, "ENDPOINT_NOT_MAPPED");
      await cell(t, who, "PUT", "/api/products", 403, {}, "ENDPOINT_NOT_MAPPED");
      await cell(t, who, "GET", "/api/shops/", 403, undefined, "ENDPOINT_NOT_MAPPED");
    }
    const outside = await call("admin", "GET", "/not-an-upstream");
    t.equal(outside.status, 404);
    t.equal((outside.json.error as { code?: string }).code, "ROUTE_NOT_FOUND");
  });
});

t.test("identity headers cannot be spoofed and credentials are never forwarded", async (t) => {
  await env.clearReceived();
  const response = await fetch(`${env.url}/api/products`, {
    headers: {
      "x-gerbang-user": "admin",
      "X-Gerbang-Roles": "admin",
      "x-gerbang-assertion": "forged",
      "x-forwarded-for": "10.0.0.1",
      "x-original-url": "/api/admin",
      cookie: `theme=dark; ${users.owner.cookie}`,
    },
  });
  t.equal(response.status, 200);
  const [got] = await env.received();
  t.equal(got?.headers["x-gerbang-user"], users.owner.userId, "the cookie's user, not the spoofed header");
  t.equal(got?.headers["x-gerbang-roles"], "user");
  t.equal(got?.headers["x-original-url"], undefined);
  t.equal(got?.headers["x-forwarded-for"], "127.0.0.1", "client address from the socket");
  t.equal(got?.headers.cookie, "theme=dark", "session cookie stripped, other cookies kept");
});

t.test("cookie sessions: writes need a trusted origin", async (t) => {
  const headers = { cookie: users.owner.cookie, "content-type": "application/json" };
  const noOrigin = await fetch(`${env.url}/api/shops`, { method: "POST", headers, body: JSON.stringify({ name: "csrf" }) });
  t.equal(noOrigin.status, 403);
  t.equal(((await noOrigin.json()) as { error: { code: string } }).error.code, "ORIGIN_NOT_TRUSTED");
  const evil = await fetch(`${env.url}/api/shops`, { method: "POST", headers: { ...headers, origin: "https://evil.example" }, body: JSON.stringify({ name: "csrf" }) });
  t.equal(evil.status, 403);
  const trusted = await fetch(`${env.url}/api/shops`, { method: "POST", headers: { ...headers, origin: env.url }, body: JSON.stringify({ name: "ok" }) });
  t.equal(trusted.status, 201);
  const read = await fetch(`${env.url}/api/inventory`, { headers: { cookie: users.sales.cookie } });
  t.equal(read.status, 200, "reads need no origin");
});

t.test("invalid, ambiguous and signed-out credentials are never anonymous", async (t) => {
  const bad = await fetch(`${env.url}/api/products`, { headers: { authorization: "Bearer not-a-real-session-token-at-all" } });
  t.equal(bad.status, 401, "a public route with a bad token is still 401");
  t.match(bad.headers.get("www-authenticate") ?? "", /invalid_token/);
  const basic = await fetch(`${env.url}/api/products`, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
  t.equal(basic.status, 401);
  const key = await fetch(`${env.url}/api/products`, { headers: { "x-api-key": "gb_live_whatever" } });
  t.equal(key.status, 401, "api keys are not accepted until they can be verified");
  const both = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${users.admin.token}`, cookie: users.owner.cookie } });
  t.equal(both.status, 400);
  t.equal(((await both.json()) as { error: { code: string } }).error.code, "AMBIGUOUS_CREDENTIALS");

  const session = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  const before = await fetch(`${env.url}/api/orders`, { method: "POST", headers: { authorization: `Bearer ${session.token}`, "content-type": "application/json" }, body: "{}" });
  t.not(before.status, 401);
  const out = await fetch(`${env.url}/api/auth/sign-out`, { method: "POST", headers: { authorization: `Bearer ${session.token}`, "content-type": "application/json", origin: env.url }, body: "{}" });
  t.equal(out.status, 200);
  const after = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${session.token}` } });
  t.equal(after.status, 401, "a signed-out session is rejected at once");
});
