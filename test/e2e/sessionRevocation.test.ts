// Session revocation reaches every instance at once (Redis pub/sub), not after auth.sessionCacheTtlMs:
// two gateway processes with a one-minute session cache, sessions used (and cached) on instance B,
// revoked through instance A by sign-out, revoke-other-sessions or a password change.
import t from "tap";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { startGatewayEnv, type SignedIn } from "../helpers/gatewayEnv.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test("revocations through one instance take effect on the other at once (long before the session cache expires)", { skip }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, instances: 2, config: { redis: { url: testRedisUrl() }, auth: { sessionCacheTtlMs: 60000 } } });
  t.teardown(() => env.close());
  const [a, b] = env.urls as [string, string];
  const bearer = (s: SignedIn): Record<string, string> => ({ authorization: `Bearer ${s.token}` });
  const statusOn = async (base: string, s: SignedIn): Promise<number> => (await fetch(`${base}/api/inventory`, { headers: bearer(s) })).status;
  /** Polls for up to 5 s (a loaded machine): still far less than the one-minute cache the revocation must beat. */
  const refusedSoon = async (base: string, s: SignedIn): Promise<number> => {
    const until = Date.now() + 5000;
    let status = await statusOn(base, s);
    while (status !== 401 && Date.now() < until) {
      await sleep(50);
      status = await statusOn(base, s);
    }
    return status;
  };
  const post = (base: string, path: string, s: SignedIn, body: unknown = {}): Promise<Response> =>
    fetch(`${base}/api/auth${path}`, { method: "POST", headers: { ...bearer(s), "content-type": "application/json", origin: base }, body: JSON.stringify(body) });

  await t.test("sign-out on A: the same session is refused on B, in either spelling", async (t) => {
    const s = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
    t.equal(await statusOn(b, s), 200, "used on B (and cached there for a minute)");
    t.equal((await fetch(`${b}/api/inventory`, { headers: { cookie: s.cookie } })).status, 200, "the cookie too");
    const out = await fetch(`${a}/api/auth/sign-out`, { method: "POST", headers: { cookie: s.cookie, "content-type": "application/json", origin: a }, body: "{}" });
    t.equal(out.status, 200, "signed out on A with the cookie");
    t.equal(await refusedSoon(b, s), 401, "the bearer spelling is refused on B");
    t.equal((await fetch(`${b}/api/inventory`, { headers: { cookie: s.cookie } })).status, 401, "and the cookie");
  });

  await t.test("revoke-other-sessions on A: the user's other sessions are refused on B; the caller's own is not", async (t) => {
    const keep = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
    const other = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
    t.equal(await statusOn(b, other), 200, "the other session is cached on B");
    t.equal((await post(a, "/revoke-other-sessions", keep)).status, 200);
    t.equal(await refusedSoon(b, other), 401, "the other session is refused on B");
    t.equal(await statusOn(b, keep), 200, "the caller's own session still works on B");
    t.equal(await statusOn(a, keep), 200, "and on A");
  });

  await t.test("a password change that revokes other sessions reaches B", async (t) => {
    const keep = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
    const other = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
    t.equal(await statusOn(b, other), 200);
    const changed = await post(a, "/change-password", keep, { currentPassword: "demo-sales-password", newPassword: "demo-sales-password-2", revokeOtherSessions: true });
    t.equal(changed.status, 200, "password changed on A");
    t.equal(await refusedSoon(b, other), 401, "the other session is refused on B");
  });

  await t.test("a password reset by emailed link on A: the user's sessions are refused on B", async (t) => {
    // The link carries a token, not a session: the gateway cannot tell whose sessions end, so it has
    // every instance forget every cached session (stale-if-error must never revive them either).
    const session = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
    t.equal(await statusOn(b, session), 403, "used on B (buyers may not read inventory) and cached there");
    const json = { "content-type": "application/json", origin: a };
    const requested = await fetch(`${a}/api/auth/request-password-reset`, { method: "POST", headers: json, body: JSON.stringify({ email: "buyer@demo.gerbang.dev", redirectTo: "/" }) });
    t.equal(requested.status, 200);
    const pg = await import("pg");
    const db = new pg.default.Client({ connectionString: env.databaseUrl ?? "" });
    await db.connect();
    t.teardown(() => db.end());
    let token = "";
    for (const until = Date.now() + 5000; token === "" && Date.now() < until; await sleep(50)) {
      const { rows } = await db.query<{ token: string }>('SELECT token FROM mail_outbox WHERE "to" = $1 AND kind = $2 ORDER BY id DESC LIMIT 1', ["buyer@demo.gerbang.dev", "reset-password"]);
      token = rows[0]?.token ?? "";
    }
    const reset = await fetch(`${a}/api/auth/reset-password`, { method: "POST", headers: json, body: JSON.stringify({ token, newPassword: "demo-buyer-password-2" }) });
    t.equal(reset.status, 200, "password reset on A with the mailed token");
    t.equal(await refusedSoon(b, session), 401, "the session is refused on B at once, not after the one-minute cache");
  });
});
