// Issue 18: issuing an API key over HTTP needs a fresh sign-in (auth.freshSignInSec, here 3 s): a
// session that is older — a cookie lifted days ago, say — may still read and revoke keys, but not
// mint or rotate one; signing in again does. The session's sliding refresh does not count as fresh.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type SignedIn } from "../helpers/gatewayEnv.ts";
import { errorOf } from "../helpers/catalogueError.ts";

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false, config: { auth: { freshSignInSec: 3 } } });
t.teardown(() => env.close());

const keys = async (s: SignedIn, method: string, path = "", body?: unknown): Promise<{ status: number; text: string }> => {
  const response = await fetch(`${env.url}/api/keys${path}`, {
    method,
    headers: { authorization: `Bearer ${s.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, text: await response.text() };
};

t.test("a key's secret is issued only to a recent sign-in", async (t) => {
  const session = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const created = await keys(session, "POST", "", { name: "feed", scopes: ["catalog:read"], expiresIn: "1d" });
  t.equal(created.status, 201, "just signed in: issued");
  const { id } = JSON.parse(created.text) as { id: string };
  await new Promise((r) => setTimeout(r, 3500));
  const stale = await keys(session, "POST", "", { name: "feed 2", scopes: ["catalog:read"], expiresIn: "1d" });
  t.equal(stale.status, 403);
  t.same([errorOf(stale.text).code, errorOf(stale.text).reason], ["FORBIDDEN", "FRESH_SIGN_IN_REQUIRED"]);
  t.match(errorOf(stale.text).message, /Sign in again/);
  t.match(errorOf((await keys(session, "POST", `/${id}/rotate`, {})).text), { reason: "FRESH_SIGN_IN_REQUIRED" }, "rotating issues a secret too");
  t.equal((await keys(session, "GET")).status, 200, "the same session still lists its keys");
  t.equal((await keys(session, "DELETE", `/${id}`)).status, 200, "and may revoke one (that gives nothing away)");
  const again = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  t.equal((await keys(again, "POST", "", { name: "feed 3", scopes: ["catalog:read"], expiresIn: "1d" })).status, 201, "a new sign-in is fresh");
});

t.test("a user lists their own sessions and ends one of them", async (t) => {
  const here = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  const there = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  const listed = await fetch(`${env.url}/api/auth/list-sessions`, { headers: { authorization: `Bearer ${here.token}` } });
  t.equal(listed.status, 200);
  const sessions = (await listed.json()) as Array<{ token: string; userId: string }>;
  t.ok(sessions.length >= 2 && sessions.every((s) => s.userId === here.userId), "only their own sessions");
  const other = sessions.find((s) => there.token.startsWith(`${s.token}.`));
  t.ok(other !== undefined, "the other sign-in is among them");
  const revoked = await fetch(`${env.url}/api/auth/revoke-session`, { method: "POST", headers: { authorization: `Bearer ${here.token}`, "content-type": "application/json", origin: env.url }, body: JSON.stringify({ token: other?.token }) });
  t.equal(revoked.status, 200, await revoked.clone().text());
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${there.token}` } })).status, 401, "the ended session is refused");
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${here.token}` } })).status, 200, "this one goes on");
});

t.test("changing the password or ending all sessions can take the user's API keys too (revokeApiKeys)", async (t) => {
  const session = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const created = await keys(session, "POST", "", { name: "feed", scopes: ["catalog:read"], expiresIn: "1d" });
  const { key: secret } = JSON.parse(created.text) as { key: string };
  const post = (path: string, s: SignedIn, body: unknown): Promise<Response> =>
    fetch(`${env.url}/api/auth${path}`, { method: "POST", headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json", origin: env.url }, body: JSON.stringify(body) });
  const other = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const kept = await post("/revoke-other-sessions", session, {});
  t.equal(kept.status, 200);
  t.equal(kept.headers.get("x-gerbang-keys-revoked"), null, "without the flag, keys stay");
  t.equal((await fetch(`${env.url}/api/products`, { headers: { "x-api-key": secret } })).status, 200);
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${other.token}` } })).status, 401, "the other session ended");
  const changed = await post("/change-password", session, { currentPassword: "demo-sales-password", newPassword: "demo-sales-password-2", revokeOtherSessions: true, revokeApiKeys: true });
  t.equal(changed.status, 200);
  t.equal(changed.headers.get("x-gerbang-keys-revoked"), "1", "the answer says how many keys went");
  t.equal((await fetch(`${env.url}/api/products`, { headers: { "x-api-key": secret } })).status, 401, "the key is refused at once");
});
