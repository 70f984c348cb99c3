// Issue 18, admin controls: `gerbang users set-role|set-attr|ban|unban|revoke-sessions` against the
// fleet's database, with two gateway processes under load and a one-minute session cache. Each change
// reaches both instances within a second — a banned or demoted user's keep-alive connections get the
// new decision on their next request — and is audited by id. Bad input changes nothing.
import t from "tap";
import { eventually } from "../helpers/eventually.ts";
import { bearer, refusedWithin, startFleet, underLoad as loadOn } from "../helpers/fleetUnderLoad.ts";
import type { SignedIn } from "../helpers/gatewayEnv.ts";

const fleet = await startFleet();
t.teardown(() => fleet.close());
const { env, a, b, db, cli } = fleet;
const underLoad = (path: string, headers: Record<string, string>, allowed: number, change: () => Promise<void>): ReturnType<typeof loadOn> => loadOn([a, b], path, headers, allowed, change);

const audited = async (action: string, target: string): Promise<boolean> =>
  eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE action = $1 AND target = $2 AND allowed", [action, target])).rowCount ?? 0) > 0);

t.test("ban: every session and key of the user refused on both instances within a second, under load", async (t) => {
  const buyer = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  const created = await fetch(`${a}/api/keys`, { method: "POST", headers: { ...bearer(buyer), "content-type": "application/json", origin: a }, body: JSON.stringify({ name: "feed", scopes: ["catalog:read"], expiresIn: "1d" }) });
  t.equal(created.status, 201);
  const { key } = (await created.json()) as { key: string };
  t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status, 200, "the key works on B (and is cached there)");
  let ban: Awaited<ReturnType<typeof cli>> | undefined;
  const load = await underLoad("/api/orders", bearer(buyer), 200, async () => {
    ban = await cli("users", "ban", "buyer@demo.gerbang.dev", "--reason", "chargebacks", "--json");
  });
  t.equal(ban?.code, 0, ban?.stderr ?? "");
  t.match(JSON.parse(ban?.stdout ?? "{}"), { banned: true, banReason: "chargebacks", announced: true });
  t.ok(load.before > 0, "the session was in use (and cached) on both instances before");
  t.equal(load.lateAllowed, 0, "no request started a second after the ban was allowed");
  t.ok(refusedWithin(load, 1000), `refused on both within a second of the command returning: ${JSON.stringify(load.refusedAfterMs)}`);
  t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status, 401, "the banned owner's key is refused on B");
  const again = await fetch(`${a}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: a }, body: JSON.stringify({ email: "buyer@demo.gerbang.dev", password: "demo-buyer-password" }) });
  t.not(again.status, 200, "sign-in is refused");
  t.ok(await audited("user.banned", buyer.userId), "audited by id");

  const unban = await cli("users", "unban", "buyer@demo.gerbang.dev");
  t.equal(unban.code, 0, unban.stderr);
  const back = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  t.equal((await fetch(`${b}/api/orders`, { headers: bearer(back) })).status, 200, "unbanned: a new sign-in works");
  t.ok(await audited("user.unbanned", buyer.userId));
});

t.test("demotion (set-role) and an attribute change reach both instances within a second", async (t) => {
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const demoted = await underLoad("/api/inventory", bearer(sales), 200, async () => {
    const run = await cli("users", "set-role", "sales@demo.gerbang.dev", "user");
    t.equal(run.code, 0, run.stderr);
  });
  t.equal(demoted.lateAllowed, 0, "sales → user: inventory refused everywhere a second later");
  t.ok(refusedWithin(demoted, 1000), `refused on both within a second: ${JSON.stringify(demoted.refusedAfterMs)}`);
  t.ok(await audited("user.role_changed", sales.userId));
  t.equal((await fetch(`${b}/api/inventory`, { headers: bearer(sales) })).status, 401, "a role change ends the user's sessions (tokens are rotated, never promoted)");
  const restored = await cli("users", "set-role", "sales@demo.gerbang.dev", "sales", "--json");
  t.equal(restored.code, 0, restored.stderr);
  t.match(JSON.parse(restored.stdout), { roles: ["sales"], sessionsRevoked: 0 }, "no session was left to end");
  const again = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  t.equal((await fetch(`${b}/api/inventory`, { headers: bearer(again) })).status, 200, "promoted back: a new sign-in reads inventory again");
  const same = await cli("users", "set-role", "sales@demo.gerbang.dev", "sales", "--json");
  t.match(JSON.parse(same.stdout), { sessionsRevoked: 0 }, "the same roles again: sessions are kept");
  t.equal((await fetch(`${b}/api/inventory`, { headers: bearer(again) })).status, 200);

  // An order in the eu region, which sales of region eu may read and no one else of their role.
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const post = async (path: string, s: SignedIn, body: unknown): Promise<Record<string, unknown>> =>
    (await (await fetch(`${a}${path}`, { method: "POST", headers: { ...bearer(s), "content-type": "application/json" }, body: JSON.stringify(body) })).json()) as Record<string, unknown>;
  const shop = await post("/api/shops", user, { name: "Kebun", region: "eu" });
  const product = await post(`/api/shops/${String(shop.id)}/products`, user, { name: "Shallots", priceCents: 100 });
  const order = await post("/api/orders", user, { productId: product.id, quantity: 1, shippingAddress: "Jl. Merdeka 1" });
  t.equal(order.region, "eu");
  const moved = await underLoad(`/api/orders/${String(order.id)}`, bearer(again), 200, async () => {
    const run = await cli("users", "set-attr", "sales@demo.gerbang.dev", "region=apac");
    t.equal(run.code, 0, run.stderr);
  });
  t.equal(moved.lateAllowed, 0, "region eu → apac: the eu order is refused everywhere a second later");
  t.ok(refusedWithin(moved, 1000), JSON.stringify(moved.refusedAfterMs));
  t.ok(await audited("user.attributes_changed", sales.userId));
  t.equal((await cli("users", "set-attr", "sales@demo.gerbang.dev", "region=eu")).code, 0);
});

t.test("revoke-sessions --keys: sessions and keys refused on both instances", async (t) => {
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const created = await fetch(`${a}/api/keys`, { method: "POST", headers: { ...bearer(user), "content-type": "application/json", origin: a }, body: JSON.stringify({ name: "feed", scopes: ["catalog:read"], expiresIn: "1d" }) });
  const { key } = (await created.json()) as { key: string };
  t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status, 200);
  t.equal((await fetch(`${b}/api/orders`, { headers: bearer(user) })).status, 200);
  const run = await cli("users", "revoke-sessions", "user@demo.gerbang.dev", "--keys", "--json");
  t.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { sessionsRevoked: number; keysRevoked: string[] };
  t.ok(result.sessionsRevoked >= 1);
  t.equal(result.keysRevoked.length >= 1, true);
  t.ok(await eventually(async () => (await fetch(`${b}/api/orders`, { headers: bearer(user) })).status === 401, 1000), "the session is refused on B within a second");
  t.ok(await eventually(async () => (await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status === 401, 1000), "and the key");
  t.ok(await audited("session.revoked", user.userId));
});

t.test("bad input gets a clear error and changes nothing", async (t) => {
  const before = (await db.query(`SELECT role, region, banned FROM "user" WHERE email = 'sales@demo.gerbang.dev'`)).rows;
  const cases: Array<[string[], RegExp]> = [
    [["users", "set-role", "sales@demo.gerbang.dev", "superuser"], /unknown role superuser \(known: admin, user, sales, partner\)/],
    [["users", "set-role", "nobody@demo.gerbang.dev", "user"], /no user with email nobody@demo\.gerbang\.dev/],
    [["users", "set-attr", "sales@demo.gerbang.dev", "colour=red"], /unknown attribute colour/],
    [["users", "set-attr", "sales@demo.gerbang.dev", "region"], /attributes are key=value/],
    [["users", "ban", "sales@demo.gerbang.dev", "--expires-in", "soon"], /--expires-in takes a duration/],
    [["users", "ban", "sales@demo.gerbang.dev", "--reason", "bad\u001b[2Jreason"], /reason/],
    [["users", "list", "--limit", "0"], /limit/],
  ];
  for (const [args, message] of cases) {
    const run = await cli(...args);
    t.not(run.code, 0, args.join(" "));
    t.match(run.stderr, message, args.join(" "));
  }
  t.same((await db.query(`SELECT role, region, banned FROM "user" WHERE email = 'sales@demo.gerbang.dev'`)).rows, before, "the user is as before");
});

t.test("users list: search, role, banned and pages", async (t) => {
  const page = await cli("users", "list", "--role", "user", "--limit", "1", "--json");
  t.equal(page.code, 0, page.stderr);
  const first = JSON.parse(page.stdout) as Array<{ email: string; roles: string[] }>;
  t.equal(first.length, 1);
  t.same(first[0]?.roles, ["user"]);
  t.match(page.stderr, /1 of \d+ users; the next page: --offset 1/);
  const next = JSON.parse((await cli("users", "list", "--role", "user", "--limit", "1", "--offset", "1", "--json")).stdout) as Array<{ email: string }>;
  t.not(next[0]?.email, first[0]?.email, "the next page is another user");
  const search = JSON.parse((await cli("users", "list", "--search", "SALES@demo", "--json")).stdout) as Array<{ email: string }>;
  t.same(search.map((u) => u.email), ["sales@demo.gerbang.dev"], "search is case-insensitive");
  const banned = JSON.parse((await cli("users", "list", "--banned", "--json")).stdout) as unknown[];
  t.same(banned, [], "nobody is banned now");
});

t.test("the admin API: the same controls over HTTP, authorized by the policy and audited", async (t) => {
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const call = async (base: string, s: SignedIn, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${base}/admin/api/users${path}`, { method, headers: { ...bearer(s), ...(body === undefined ? {} : { "content-type": "application/json" }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const page = await call(a, admin, "GET", "?role=user&limit=1");
  t.equal(page.status, 200);
  t.match(page.json, { total: Number, nextOffset: 1 });
  t.equal((page.json.users as unknown[]).length, 1);
  t.equal((await call(a, admin, "GET", "?limit=lots")).status, 400, "a bad query is a 400");
  t.match(await call(a, user, "GET", ""), { status: 403 }, "a user may not list accounts");
  t.match(await call(a, user, "POST", "/ban", { email: "buyer@demo.gerbang.dev" }), { status: 403 }, "nor ban");

  const buyer = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  t.equal((await fetch(`${b}/api/orders`, { headers: bearer(buyer) })).status, 200);
  const banned = await call(a, admin, "POST", "/ban", { email: "buyer@demo.gerbang.dev", reason: "over HTTP" });
  t.equal(banned.status, 200);
  t.match(banned.json, { banned: true, announced: true });
  t.ok(await eventually(async () => (await fetch(`${b}/api/orders`, { headers: bearer(buyer) })).status === 401, 1000), "refused on B within a second");
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE action = 'user.banned' AND target = $1 AND principal_id = $2", [buyer.userId, admin.userId])).rowCount ?? 0) > 0), "audited with the admin as actor");
  t.equal((await call(a, admin, "POST", "/unban", { email: "buyer@demo.gerbang.dev" })).status, 200);

  t.match(await call(a, admin, "POST", "/ban", { email: "admin@demo.gerbang.dev" }), { status: 422, json: { error: { code: "OPERATION_REFUSED", message: "you cannot ban your own account" } } }, "an admin cannot lock themselves out");
  t.match(await call(a, admin, "POST", "/set-role", { email: "user@demo.gerbang.dev", role: "root" }), { status: 422, json: { error: { message: /unknown role root/ } } });
  t.match(await call(a, admin, "POST", "/set-role", { email: "user@demo.gerbang.dev" }), { status: 400 }, "a body without the role");
  t.match(await call(a, admin, "POST", "/delete-everything", {}), { status: 404 }, "no such operation");
});
