// Partner API keys end to end: two gateway processes share PostgreSQL and Redis; keys are issued by
// the CLI and over HTTP, verified on both instances, and revocation, expiry, rotation and owner
// changes reach both within a second.
import t from "tap";
import { createHash } from "node:crypto";
import pg from "pg";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";
import { rawRequest } from "../helpers/rawHttp.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const codeOf = async (response: Response): Promise<{ code?: string; reason?: string }> => ((await response.json()) as { error: { code?: string; reason?: string } }).error;

t.test("API keys on two instances", { skip }, async (t) => {
  const env: GatewayEnv = await startGatewayEnv({
    postgres: true,
    instances: 2,
    config: { redis: { url: testRedisUrl() }, apiKeys: { lastUsedFlushMs: 200 } },
  });
  t.teardown(() => env.close());
  const [a, b] = env.urls as [string, string];
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  const issue = async (...args: string[]): Promise<{ key: string; id: string }> => {
    const run = await cli("keys", "create", "--json", ...args);
    if (run.code !== 0) throw new Error(`keys create failed: ${run.stderr}`);
    const lines = run.stdout.trim().split("\n");
    return { key: lines.at(-1) ?? "", id: (JSON.parse(lines[0] ?? "{}") as { id: string }).id };
  };
  const get = (base: string, path: string, key: string): Promise<Response> => fetch(`${base}${path}`, { headers: { "x-api-key": key } });
  /** Polls until `check` holds; returns the milliseconds it took. */
  const within = async (ms: number, check: () => Promise<boolean>): Promise<number> => {
    const started = Date.now();
    while (Date.now() - started < ms) {
      if (await check()) return Date.now() - started;
      await sleep(25);
    }
    return Infinity;
  };

  const partner = await cli("users", "create", "--email", "ops@acme.example", "--password", "acme-partner-password", "--role", "partner");
  t.equal(partner.code, 0, partner.stderr);
  const partnerId = partner.stdout.trim();

  await t.test("the CLI issues a key shown once, stored only as a SHA-256 hash", async (t) => {
    const run = await cli("keys", "create", "--owner", "ops@acme.example", "--name", "acme catalog", "--tier", "partner-basic", "--scopes", "catalog:read");
    t.equal(run.code, 0, run.stderr);
    const key = run.stdout.trim().split("\n").at(-1) ?? "";
    t.match(key, /^gb_live_[0-9A-Za-z]{49}$/, "the key alone on the last line");
    const { rows } = await db.query<{ key: string; start: string; all: string }>(`SELECT key, start, row_to_json(k)::text AS all FROM apikey k WHERE "referenceId" = $1`, [partnerId]);
    t.equal(rows.length, 1);
    t.equal(rows[0]?.key, createHash("sha256").update(key).digest("base64url"));
    t.notOk(rows[0]?.all.includes(key.slice(8)), "the key itself is nowhere in the row");
    t.equal(rows[0]?.start, key.slice(0, 12), "a recognizable start for listings");
    const { rows: expiry } = await db.query<{ days: number }>(`SELECT extract(epoch FROM "expiresAt" - now()) / 86400 AS days FROM apikey WHERE "referenceId" = $1`, [partnerId]);
    t.ok(Math.abs(Number(expiry[0]?.days) - 365) < 0.01, "without --expires-in a key gets the longest allowed lifetime");

    const refused = await cli("keys", "create", "--owner", "ops@acme.example", "--name", "x", "--tier", "gold", "--scopes", "catalog:read");
    t.equal(refused.code, 1);
    t.match(refused.stderr, /unknown tier gold/);
    const noScope = await cli("keys", "create", "--owner", "ops@acme.example", "--name", "x", "--tier", "partner-basic", "--scopes", "everything");
    t.match(noScope.stderr, /unknown scope everything/);
  });

  const catalog = await issue("--owner", "ops@acme.example", "--name", "catalog", "--tier", "partner-basic", "--scopes", "catalog:read");
  const inventory = await issue("--owner", "ops@acme.example", "--name", "inventory", "--tier", "partner-pro", "--scopes", "inventory:read");

  await t.test("a key works on both instances, within owner ∩ scopes, and is never forwarded", async (t) => {
    for (const base of [a, b]) {
      await env.clearReceived();
      const ok = await get(base, "/api/products", catalog.key);
      t.equal(ok.status, 200, `${base}: catalog key reads products`);
      const [seen] = await env.received();
      t.equal(seen?.headers["x-gerbang-auth"], "api-key");
      t.equal(seen?.headers["x-gerbang-key"], catalog.id);
      t.equal(seen?.headers["x-gerbang-user"], partnerId);
      t.equal(seen?.headers["x-gerbang-roles"], "partner");
      t.equal(seen?.headers["x-api-key"], undefined, "the key is not forwarded");
    }
    const outside = await get(b, "/api/inventory", catalog.key);
    t.equal(outside.status, 403);
    t.match(await codeOf(outside), { code: "FORBIDDEN", reason: "OUTSIDE_KEY_SCOPE" }, "inventory is outside catalog:read");
    t.equal((await get(a, "/api/inventory", inventory.key)).status, 200, "inventory:read reads inventory");
    const order = await fetch(`${a}/api/orders`, { method: "POST", headers: { "x-api-key": inventory.key, "content-type": "application/json" }, body: "{}" });
    t.equal(order.status, 403, "the partner role cannot order, whatever the scopes");
    const raw = await rawRequest(a, `GET /api/products HTTP/1.1\r\nHost: x\r\nX-API-KEY: ${catalog.key}\r\nConnection: close\r\n\r\n`);
    t.equal(raw.status, 200, "the header name in any case");
  });

  await t.test("malformed keys are 401 without a lookup; keys in the query are 400 and never forwarded", async (t) => {
    const flipped = catalog.key.slice(0, 20) + (catalog.key[20] === "a" ? "b" : "a") + catalog.key.slice(21);
    for (const bad of [flipped, `gb_test_${catalog.key.slice(8)}`, "gb_live_short", catalog.key.toLowerCase()]) {
      const response = await get(a, "/api/products", bad);
      t.equal(response.status, 401, `${bad.slice(0, 12)}…: 401`);
      t.equal((await codeOf(response)).code, "INVALID_CREDENTIALS");
      t.match(response.headers.get("www-authenticate") ?? "", /invalid_token/);
    }
    await env.clearReceived();
    for (const query of [`api_key=${catalog.key}`, `x-api-key=${catalog.key}`, `q=${catalog.key}`, `APIKEY=whatever`]) {
      const response = await fetch(`${a}/api/products?${query}`);
      t.equal(response.status, 400, `?${query.slice(0, 12)}…`);
      t.equal((await codeOf(response)).code, "API_KEY_IN_QUERY");
    }
    t.same(await env.received(), [], "nothing reached the upstream");
    const both = await fetch(`${a}/api/products`, { headers: { "x-api-key": catalog.key, authorization: "Bearer abcdefghijklmnopqrstuvwxyz" } });
    t.equal(both.status, 400, "a key and a bearer token together are ambiguous");
  });

  await t.test("revocation reaches both instances within a second", async (t) => {
    const victim = await issue("--owner", "ops@acme.example", "--name", "revoke-me", "--tier", "partner-basic", "--scopes", "catalog:read");
    for (const base of [a, b]) t.equal((await get(base, "/api/products", victim.key)).status, 200, "warm on both");
    const run = await cli("keys", "revoke", victim.id);
    t.equal(run.code, 0, run.stderr);
    for (const base of [a, b]) {
      const ms = await within(1000, async () => (await get(base, "/api/products", victim.key)).status === 401);
      t.ok(ms < 1000, `${base}: refused ${ms} ms after the CLI returned`);
    }
    const listed = await cli("keys", "list", "--owner", "ops@acme.example", "--json");
    const views = JSON.parse(listed.stdout) as Array<{ id: string; status: string }>;
    t.equal(views.find((v) => v.id === victim.id)?.status, "revoked", "revoked keys stay listed");
    t.notOk(listed.stdout.includes(victim.key.slice(8)), "listings never show keys");
  });

  await t.test("expiry is checked at use, on both instances", async (t) => {
    const short = await issue("--owner", "ops@acme.example", "--name", "short", "--tier", "partner-basic", "--scopes", "catalog:read", "--expires-in", "2s");
    for (const base of [a, b]) t.equal((await get(base, "/api/products", short.key)).status, 200);
    await sleep(2100);
    for (const base of [a, b]) t.equal((await get(base, "/api/products", short.key)).status, 401, `${base}: expired`);
  });

  await t.test("rotation: the old key works until its grace deadline, the new one from the start", async (t) => {
    const old = await issue("--owner", "ops@acme.example", "--name", "rotating", "--tier", "partner-pro", "--scopes", "catalog:read");
    for (const base of [a, b]) t.equal((await get(base, "/api/products", old.key)).status, 200);
    const run = await cli("keys", "rotate", old.id, "--grace", "3s");
    t.equal(run.code, 0, run.stderr);
    const fresh = run.stdout.trim().split("\n").at(-1) ?? "";
    t.match(fresh, /^gb_live_/);
    t.not(fresh, old.key);
    for (const base of [a, b]) {
      t.equal((await get(base, "/api/products", old.key)).status, 200, `${base}: old key inside the grace period`);
      t.equal((await get(base, "/api/products", fresh)).status, 200, `${base}: new key`);
    }
    const again = await cli("keys", "rotate", old.id);
    t.equal(again.code, 1, "a rotated key cannot be rotated twice");
    await sleep(3100);
    for (const base of [a, b]) {
      t.equal((await get(base, "/api/products", old.key)).status, 401, `${base}: old key after the deadline`);
      t.equal((await get(base, "/api/products", fresh)).status, 200, `${base}: new key still works`);
    }
    const { rows } = await db.query<{ metadata: string }>(`SELECT metadata FROM apikey WHERE key = $1`, [createHash("sha256").update(fresh).digest("base64url")]);
    t.match(JSON.parse(rows[0]?.metadata ?? "{}"), { tier: "partner-pro", scopes: ["catalog:read"], rotatedFrom: old.id }, "same tier and scopes");
  });

  await t.test("last use is recorded in batches", async (t) => {
    const ms = await within(3000, async () => {
      const { rows } = await db.query<{ lastRequest: Date | null }>(`SELECT "lastRequest" FROM apikey WHERE id = $1`, [catalog.id]);
      return rows[0]?.lastRequest != null;
    });
    t.ok(ms < 3000, "lastRequest written");
  });

  await t.test("an owner's role change and ban reach both instances within a second", async (t) => {
    const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
    for (const base of [a, b]) t.equal((await get(base, "/api/inventory", inventory.key)).status, 200, "warm");
    const setRole = await fetch(`${a}/api/auth/admin/set-role`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json", origin: a },
      body: JSON.stringify({ userId: partnerId, role: "user" }),
    });
    t.equal(setRole.status, 200, await setRole.clone().text());
    const ms = await within(1000, async () => (await get(b, "/api/inventory", inventory.key)).status === 403);
    t.ok(ms < 1000, `the other instance applied the new role after ${ms} ms`);
    const ban = await fetch(`${a}/api/auth/admin/ban-user`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json", origin: a },
      body: JSON.stringify({ userId: partnerId }),
    });
    t.equal(ban.status, 200);
    const banned = await within(1000, async () => (await get(b, "/api/products", catalog.key)).status === 401);
    t.ok(banned < 1000, `a banned owner's keys fail on the other instance after ${banned} ms`);
  });

  await t.test("keys over HTTP: owners manage their own, admins all, keys none", async (t) => {
    const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
    const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
    const call = (base: string, method: string, path: string, token: string, body?: unknown): Promise<Response> =>
      fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    const created = await call(a, "POST", "/api/keys", user.token, { name: "my script", scopes: ["catalog:read"], expiresIn: "30d" });
    t.equal(created.status, 201);
    t.equal(created.headers.get("cache-control"), "no-store");
    const mine = (await created.json()) as { key: string; id: string; tier: string; ownerId: string; status: string };
    t.match(mine, { tier: "partner-basic", ownerId: user.userId, status: "active" });
    t.equal((await get(b, "/api/products", mine.key)).status, 200, "the new key works on the other instance");

    const own = (await (await call(b, "GET", "/api/keys", user.token)).json()) as { keys: Array<{ id: string; ownerId: string }> };
    t.ok(own.keys.length >= 1 && own.keys.every((k) => k.ownerId === user.userId), "a user lists only their own keys");
    const all = (await (await call(b, "GET", "/api/keys", admin.token)).json()) as { keys: Array<{ ownerId: string }> };
    t.ok(all.keys.some((k) => k.ownerId === partnerId), "an admin lists everyone's keys");
    t.notOk(JSON.stringify(all).includes("gb_live_") && JSON.stringify(all).includes(mine.key), "no key in a listing");

    const foreign = await call(a, "DELETE", `/api/keys/${catalog.id}`, user.token);
    t.equal(foreign.status, 404, "someone else's key does not exist for you");
    t.equal((await codeOf(foreign)).code, "KEY_NOT_FOUND");
    const pro = await call(a, "POST", "/api/keys", user.token, { name: "x", scopes: ["catalog:read"], tier: "partner-pro" });
    t.equal(pro.status, 403);
    t.equal((await codeOf(pro)).reason, "TIER_NOT_SELF_SERVICE");
    const forOther = await call(a, "POST", "/api/keys", user.token, { name: "x", scopes: ["catalog:read"], ownerId: partnerId });
    t.equal(forOther.status, 403);
    const invalid = await call(a, "POST", "/api/keys", user.token, { name: "x", scopes: [] });
    t.equal(invalid.status, 400);
    t.match((await codeOf(invalid)) as object, { code: "MALFORMED_REQUEST" });
    const byKey = await fetch(`${a}/api/keys`, { headers: { "x-api-key": mine.key } });
    t.equal(byKey.status, 403);
    t.equal((await codeOf(byKey)).reason, "KEYS_CANNOT_MANAGE_KEYS");
    t.equal((await fetch(`${a}/api/keys`)).status, 401);
    const plugin = await call(a, "POST", "/api/auth/api-key/create", user.token, { name: "sneaky" });
    t.equal(plugin.status, 404, "Better Auth's own key endpoints are not exposed");

    const rotated = await call(a, "POST", `/api/keys/${mine.id}/rotate`, user.token, { grace: "1h" });
    t.equal(rotated.status, 201);
    const next = (await rotated.json()) as { key: string; previous: { id: string; expiresAt: string } };
    t.equal(next.previous.id, mine.id);
    t.equal((await get(a, "/api/products", next.key)).status, 200);
    const revoked = await call(b, "DELETE", `/api/keys/${mine.id}`, user.token);
    t.equal(revoked.status, 200);
    const ms = await within(1000, async () => (await get(a, "/api/products", mine.key)).status === 401);
    t.ok(ms < 1000, `revoked over HTTP on one instance, refused on the other after ${ms} ms`);
  });
});
