// Faults, PostgreSQL taken away and given back under load (issue 4). The gateway reaches its database
// through a TCP relay the test cuts. While it is away: sessions and API keys verified before keep
// working from the in-process caches (README: auth.sessionCacheTtlMs, apiKeys.cacheTtlMs), anything
// that needs the database (a new sign-in, a session or key not seen yet) is 503, never anonymous,
// and nothing is granted that would be refused with the database up. It recovers without a restart.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { startRelayedDatabase } from "../helpers/relayedDatabase.ts";
import { runGerbang } from "../helpers/processes.ts";
import { logCaughtUp } from "../helpers/logCaughtUp.ts";

const skip = await serviceGate("postgres");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test("PostgreSQL stopped and restarted under load", { skip }, async (t) => {
  const relay = await startRelayedDatabase();
  t.teardown(() => relay.close());
  const env = await startGatewayEnv({ postgres: false, config: { database: { url: relay.url }, auth: { sessionCacheTtlMs: 60000 }, apiKeys: { cacheTtlMs: 60000 } } });
  t.teardown(() => env.close());
  const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  t.equal((await cli("users", "create", "--email", "ops@acme.example", "--password", "acme-partner-password", "--role", "partner")).code, 0);
  const issued = await cli("keys", "create", "--owner", "ops@acme.example", "--name", "catalog", "--tier", "partner-basic", "--scopes", "catalog:read");
  const key = issued.stdout.trim().split("\n").at(-1) ?? "";
  const unusedKey = (await cli("keys", "create", "--owner", "ops@acme.example", "--name", "unused", "--tier", "partner-basic", "--scopes", "catalog:read")).stdout.trim().split("\n").at(-1) ?? "";

  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  // What each kind of caller gets with the database up; the load below must see the same or a 503.
  const kinds: Record<string, { path: string; headers: Record<string, string>; expect: number }> = {
    // Users may read shops, anonymous callers may not (a session mistaken for anonymous would get 401);
    // allowed, it is forwarded, and the demo upstream, which holds no shops, answers 404 itself.
    "cached session, allowed": { path: "/api/shops/shp_1", headers: { authorization: `Bearer ${user.token}` }, expect: 404 },
    "cached session, forbidden": { path: "/api/inventory", headers: { authorization: `Bearer ${user.token}` }, expect: 403 },
    "cached key, allowed": { path: "/api/products", headers: { "x-api-key": key }, expect: 200 },
    "cached key, out of scope": { path: "/api/inventory", headers: { "x-api-key": key }, expect: 403 },
    anonymous: { path: "/api/inventory", headers: {}, expect: 401 },
    "anonymous public read": { path: "/api/products", headers: {}, expect: 200 },
  };
  for (const [name, kind] of Object.entries(kinds)) {
    t.equal((await fetch(`${env.url}${kind.path}`, { headers: kind.headers })).status, kind.expect, `database up: ${name} → ${kind.expect} (and now cached)`);
  }

  const seen = new Map<string, Map<number, number>>();
  const phase = { name: "before" };
  const record = (kind: string, status: number): void => {
    const key = `${phase.name}: ${kind}`;
    const counts = seen.get(key) ?? new Map<number, number>();
    counts.set(status, (counts.get(status) ?? 0) + 1);
    seen.set(key, counts);
  };
  let running = true;
  const clients = Object.entries(kinds).map(async ([name, kind]) => {
    while (running) {
      const status = await fetch(`${env.url}${kind.path}`, { headers: kind.headers }).then(
        async (r) => (await r.arrayBuffer(), r.status),
        () => 0,
      );
      record(name, status);
      await sleep(5);
    }
  });
  t.teardown(async () => {
    running = false;
    await Promise.all(clients);
  });
  await sleep(500);

  phase.name = "outage";
  await relay.cut();
  await sleep(300);
  const signIn = await fetch(`${env.url}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ email: "buyer@demo.gerbang.dev", password: "demo-buyer-password" }),
  });
  t.equal(signIn.status, 503, "a new sign-in: 503");
  t.match(await signIn.json(), { error: { code: "DEPENDENCY_UNAVAILABLE" } });
  const uncachedSession = await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${sales.token}` } });
  t.equal(uncachedSession.status, 503, "a session signed in but never used (not cached): 503, not anonymous");
  const uncachedKey = await fetch(`${env.url}/api/products`, { headers: { "x-api-key": unusedKey } });
  t.equal(uncachedKey.status, 503, "a key never used (not cached): 503, not anonymous");
  const forged = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${sales.token.slice(0, -3)}abc` } });
  t.equal(forged.status, 401, "a token whose signature fails is refused without the database: 401, not the anonymous answer");
  const ready = await fetch(`${env.url}/readyz`);
  t.equal(ready.status, 503, "readiness reports the outage");
  t.match(await ready.json(), { checks: { database: "failing" } });
  await sleep(2500);

  phase.name = "recovery";
  await relay.restore();
  let recovered = 0;
  for (let i = 0; i < 60 && recovered !== 200; i++) {
    const response = await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${sales.token}` } });
    recovered = response.status;
    if (recovered !== 200) await sleep(250);
  }
  t.equal(recovered, 200, "after the database is back, the uncached session is verified (sales may read inventory)");
  const again = await fetch(`${env.url}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ email: "buyer@demo.gerbang.dev", password: "demo-buyer-password" }),
  });
  t.equal(again.status, 200, "sign-in works again without a restart");
  t.equal((await fetch(`${env.url}/readyz`)).status, 200);
  await sleep(500);
  running = false;
  await Promise.all(clients);

  for (const [name, kind] of Object.entries(kinds)) {
    for (const p of ["before", "outage", "recovery"]) {
      const counts = seen.get(`${p}: ${name}`) ?? new Map<number, number>();
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      t.ok(total > 0, `${p}: ${name}: ${total} requests under load`);
      // Cached callers and anonymous callers need no database: their answers do not change at all.
      t.same([...counts.keys()], [kind.expect], `${p}: ${name}: always ${kind.expect} (${JSON.stringify(Object.fromEntries(counts))})`);
    }
  }
  t.ok(await logCaughtUp(() => env.gateway.output()), "the log is written");
  t.notMatch(env.gateway.output(), /"level":50.*unhandled|TypeError/, "no unhandled errors");
});
