import t from "tap";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startDemoUpstream } from "../../src/demo/upstream.ts";
import type { DemoUpstream, ReceivedRequest } from "../../src/demo/upstream.ts";

interface JsonResponse {
  status: number;
  body: Record<string, unknown>;
}

const seller = {
  "x-gerbang-user": "user_seller",
  "x-gerbang-roles": "seller,buyer",
  "x-gerbang-auth": "session",
  "x-gerbang-policy": "v7",
  "x-request-id": "req-1",
};
const buyer = { ...seller, "x-gerbang-user": "user_buyer", "x-gerbang-roles": "buyer" };

async function call(
  upstream: DemoUpstream,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; json?: unknown; body?: string } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.body;
  if (init.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.json);
  }
  const res = await fetch(upstream.url + path, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

t.test("shop, product and order flows echo the forwarded identity", async (t) => {
  const upstream = await startDemoUpstream();
  t.teardown(() => upstream.close());
  t.match(upstream.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const created = await call(upstream, "POST", "/api/shops", { headers: seller, json: { name: "Kedai", region: "id-jkt" } });
  t.equal(created.status, 201);
  t.same(created.body, {
    id: "shop_1",
    name: "Kedai",
    ownerId: "user_seller",
    region: "id-jkt",
    gerbang: { user: "user_seller", roles: ["seller", "buyer"], auth: "session", policy: "v7" },
  });

  const defaulted = await call(upstream, "POST", "/api/shops", { headers: seller, json: { name: "Toko" } });
  t.equal(defaulted.body.id, "shop_2");
  t.equal(defaulted.body.region, "global");

  const patched = await call(upstream, "PATCH", "/api/shops/shop_1", {
    headers: seller,
    json: { name: "Kedai Baru", ownerId: "someone_else" },
  });
  t.equal(patched.status, 200);
  t.equal(patched.body.name, "Kedai Baru");
  t.equal(patched.body.ownerId, "user_seller", "ownerId is not editable");

  const product = await call(upstream, "POST", "/api/shops/shop_1/products", {
    headers: seller,
    json: { name: "Kopi", priceCents: 2500 },
  });
  t.equal(product.status, 201);
  t.match(product.body, { id: "prd_1", shopId: "shop_1", name: "Kopi", priceCents: 2500 });
  t.equal((await call(upstream, "GET", "/api/products/prd_1", { headers: buyer })).body.name, "Kopi");
  const listed = await call(upstream, "GET", "/api/products?shopId=shop_1", { headers: buyer });
  t.same(listed.body.products, [{ id: "prd_1", shopId: "shop_1", name: "Kopi", priceCents: 2500 }]);

  const order = await call(upstream, "POST", "/api/orders", {
    headers: buyer,
    json: { productId: "prd_1", quantity: 2, shippingAddress: "Jl. Sudirman 1" },
  });
  t.equal(order.status, 201);
  t.match(order.body, {
    id: "ord_1",
    buyerId: "user_buyer",
    productId: "prd_1",
    quantity: 2,
    region: "id-jkt",
    status: "pending",
    shippingAddress: "Jl. Sudirman 1",
    notes: null,
    gerbang: { user: "user_buyer", roles: ["buyer"] },
  });

  const updated = await call(upstream, "PATCH", "/api/orders/ord_1", {
    headers: seller,
    json: { status: "shipped", notes: "fragile", buyerId: "ignored" },
  });
  t.match(updated.body, { status: "shipped", notes: "fragile", buyerId: "user_buyer", shippingAddress: "Jl. Sudirman 1" });
  t.equal((await call(upstream, "GET", "/api/orders/ord_1", { headers: buyer })).body.status, "shipped");

  const badStatus = await call(upstream, "PATCH", "/api/orders/ord_1", { headers: seller, json: { status: "lost" } });
  t.equal(badStatus.status, 400);
  t.equal(badStatus.body.error, "invalid_body");
  const unknownProduct = await call(upstream, "POST", "/api/orders", {
    headers: buyer,
    json: { productId: "prd_404", quantity: 1, shippingAddress: "x" },
  });
  t.equal(unknownProduct.status, 400);

  const anonymous = await call(upstream, "POST", "/api/shops", {
    headers: { "x-gerbang-auth": "anonymous", "x-gerbang-policy": "v7" },
    json: { name: "Nope" },
  });
  t.equal(anonymous.status, 400);
  t.same(anonymous.body.gerbang, { user: null, roles: [], auth: "anonymous", policy: "v7" });

  for (const path of ["/api/shops/shop_9", "/api/orders/ord_9", "/api/products/prd_9", "/api/nothing-here"]) {
    const missing = await call(upstream, "GET", path, { headers: buyer });
    t.equal(missing.status, 404, path);
    t.equal(missing.body.error, "not_found", path);
    t.match(missing.body.gerbang, { user: "user_buyer" }, path);
  }

  const stats = await call(upstream, "GET", "/api/admin/stats", { headers: seller });
  t.match(stats.body, { shops: 2, products: 1, orders: 1, gerbang: { user: "user_seller" } });
  const adminAction = await call(upstream, "POST", "/api/admin/users/u1/ban?reason=spam", { headers: seller, json: {} });
  t.equal(adminAction.status, 200);
  t.match(adminAction.body, { ok: true, method: "POST", path: "/api/admin/users/u1/ban" });

  const deleted = await call(upstream, "DELETE", "/api/shops/shop_1", { headers: seller });
  t.equal(deleted.status, 200);
  t.equal(deleted.body.deleted, "shop_1");
  t.equal((await call(upstream, "GET", "/api/products/prd_1")).status, 404, "products go with their shop");
  t.equal((await call(upstream, "DELETE", "/api/shops/shop_1")).status, 404);
  const next = await call(upstream, "POST", "/api/shops", { headers: seller, json: { name: "Again" } });
  t.equal(next.body.id, "shop_3", "deleted ids are not reissued");
});

t.test("seed replaces collections and the attributes contract answers from them", async (t) => {
  const upstream = await startDemoUpstream();
  t.teardown(() => upstream.close());
  await upstream.seed({
    shops: [{ id: "shop_1", name: "Seeded", ownerId: "u1", region: "eu" }],
    products: [{ id: "prd_1", shopId: "shop_1", name: "Tea", priceCents: 100 }],
    orders: [
      {
        id: "ord_1",
        buyerId: "u2",
        productId: "prd_1",
        quantity: 1,
        region: "eu",
        status: "delivered",
        shippingAddress: "Somewhere",
        notes: null,
      },
    ],
    inventory: [{ productId: "prd_1", shopId: "shop_1", quantity: 12 }],
  });

  const attrs = async (subject: string, id: string): Promise<JsonResponse> =>
    call(upstream, "GET", `/.well-known/gerbang/attributes/${subject}/${id}`);
  t.same(await attrs("Shop", "shop_1"), { status: 200, body: { id: "shop_1", ownerId: "u1", region: "eu" } });
  t.same(await attrs("Order", "ord_1"), { status: 200, body: { id: "ord_1", buyerId: "u2", region: "eu", status: "delivered" } });
  t.same(await attrs("Product", "prd_1"), { status: 200, body: { id: "prd_1", shopId: "shop_1" } });
  t.same(await attrs("Shop", "shop_2"), { status: 404, body: { error: "not_found" } });
  t.same(await attrs("Invoice", "shop_1"), { status: 404, body: { error: "not_found" } });
  t.same(await attrs("Shop", "__proto__"), { status: 404, body: { error: "not_found" } });

  const inventory = await call(upstream, "GET", "/api/inventory?shopId=shop_1");
  t.same(inventory.body.inventory, [{ productId: "prd_1", shopId: "shop_1", quantity: 12 }]);

  const created = await call(upstream, "POST", "/api/shops", { headers: seller, json: { name: "New" } });
  t.equal(created.body.id, "shop_2", "created ids skip seeded ones");

  await upstream.seed({ shops: [] });
  t.equal((await attrs("Shop", "shop_1")).status, 404, "provided collections are replaced");
  t.equal((await attrs("Product", "prd_1")).status, 200, "omitted collections are kept");
});

t.test("records every request in order with raw url, headers and parsed body", async (t) => {
  const upstream = await startDemoUpstream();
  t.teardown(() => upstream.close());

  await call(upstream, "POST", "/api/shops?x=%20y&x=2", { headers: seller, json: { name: "A" } });
  await fetch(`${upstream.url}/api/admin/import`, { method: "PUT", headers: { "content-type": "text/csv" }, body: "a,b\n1,2" });
  await fetch(`${upstream.url}/api/admin/blob`, { method: "POST", body: "no content type" });
  await fetch(`${upstream.url}/api/admin/bin`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: "raw-bytes",
  });
  const emptyJson = await fetch(`${upstream.url}/api/admin/x`, { method: "DELETE", headers: { "content-type": "application/json" } });
  t.equal(emptyJson.status, 200, "an empty JSON body is accepted");
  const badJson = await call(upstream, "POST", "/api/shops", { headers: { ...seller, "content-type": "application/json" }, body: "{" });
  t.equal(badJson.status, 400);
  t.match(badJson.body.gerbang, { user: "user_seller" });
  await call(upstream, "GET", "/.well-known/gerbang/attributes/Shop/shop_1");

  const received = upstream.received();
  t.same(
    received.map((r) => [r.method, r.url]),
    [
      ["POST", "/api/shops?x=%20y&x=2"],
      ["PUT", "/api/admin/import"],
      ["POST", "/api/admin/blob"],
      ["POST", "/api/admin/bin"],
      ["DELETE", "/api/admin/x"],
      ["POST", "/api/shops"],
      ["GET", "/.well-known/gerbang/attributes/Shop/shop_1"],
    ],
  );
  t.same(received[0]?.body, { name: "A" });
  t.equal(received[0]?.headers["x-gerbang-user"], "user_seller");
  t.equal(received[0]?.headers["x-request-id"], "req-1");
  t.equal(received[1]?.body, "a,b\n1,2");
  t.equal(received[2]?.body, "no content type");
  t.equal(received[3]?.body, "raw-bytes");
  t.equal(received[4]?.body, undefined);

  const copy = upstream.received();
  copy.length = 0;
  (received[0] as ReceivedRequest).url = "changed";
  t.equal(upstream.received()[0]?.url, "/api/shops?x=%20y&x=2", "received() returns a copy");

  const overHttp = await fetch(`${upstream.url}/__demo/received`);
  const served = (await overHttp.json()) as ReceivedRequest[];
  t.equal(served.length, 7, "the received endpoint does not record itself");
  t.equal(served[1]?.body, "a,b\n1,2");

  const cleared = await fetch(`${upstream.url}/__demo/received`, { method: "DELETE" });
  t.equal(cleared.status, 200);
  t.same(upstream.received(), []);

  await call(upstream, "GET", "/api/products");
  upstream.clearReceived();
  t.same(upstream.received(), []);
});

t.test("keeps only the most recent 1000 requests", async (t) => {
  const upstream = await startDemoUpstream();
  t.teardown(() => upstream.close());
  for (let batch = 0; batch < 21; batch += 1) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => fetch(`${upstream.url}/api/products?n=${batch * 50 + i}`)));
  }
  const received = upstream.received();
  t.equal(received.length, 1000);
  t.notOk(received.some((r) => r.url === "/api/products?n=0"), "the oldest entries are dropped");
});

t.test("upstreamMain starts, prints its url and exits 0 on SIGTERM", async (t) => {
  const script = fileURLToPath(new URL("../../src/demo/upstreamMain.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, "--port", "0", "--audience", "marketplace"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });

  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("\n")) resolve(out);
    });
    child.on("exit", () => reject(new Error(`exited early: ${out}`)));
  });
  const match = /^demo upstream listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(line);
  t.ok(match, `printed one listening line: ${JSON.stringify(line)}`);
  const url = match?.[1] ?? "";
  const res = await fetch(`${url}/api/admin/stats`);
  t.equal(res.status, 200);

  child.kill("SIGTERM");
  t.equal(await exited, 0);
});

t.test("upstreamMain rejects a bad port", async (t) => {
  const script = fileURLToPath(new URL("../../src/demo/upstreamMain.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, "--port", "http"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  t.equal(code, 1);
  t.match(stderr, /--port must be an integer/);
});
