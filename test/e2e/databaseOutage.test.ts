// PostgreSQL taken away under a running gateway: authentication fails closed with 503 (never
// anonymous, never a 500 with internals), readiness reports it, and service recovers by itself.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { startRelayedDatabase } from "../helpers/relayedDatabase.ts";

const skip = await serviceGate("postgres");

t.test("database outage", { skip }, async (t) => {
  const relay = await startRelayedDatabase();
  t.teardown(() => relay.close());
  const env = await startGatewayEnv({ postgres: false, config: { database: { url: relay.url }, auth: { sessionCacheTtlMs: 0 } } });
  t.teardown(() => env.close());

  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const bearer = { authorization: `Bearer ${user.token}` };
  t.equal((await fetch(`${env.url}/api/inventory`, { headers: bearer })).status, 403, "with the database up: the user's normal answer");

  await relay.cut();
  const withSession = await fetch(`${env.url}/api/products`, { headers: bearer });
  t.equal(withSession.status, 503, "a session cannot be checked: 503, not anonymous");
  const body = await withSession.text();
  t.match(JSON.parse(body), { error: { code: "DEPENDENCY_UNAVAILABLE" } });
  t.notMatch(body, /prisma|ECONN|postgres|stack/i, "no internals");
  // A token without a valid signature is refused without asking the database: 401, never anonymous.
  const garbage = await fetch(`${env.url}/api/products`, { headers: { authorization: "Bearer xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" } });
  t.equal(garbage.status, 401, "an unsigned token is refused, not anonymous");
  const forged = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${user.token.slice(0, -3)}abc` } });
  t.equal(forged.status, 401, "a token with a forged signature too");
  const signIn = await fetch(`${env.url}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ email: "user@demo.gerbang.dev", password: "demo-user-password" }),
  });
  t.equal(signIn.status, 503, "new sign-ins fail with 503");
  t.match(await signIn.json(), { error: { code: "DEPENDENCY_UNAVAILABLE" } });
  t.equal((await fetch(`${env.url}/api/products`)).status, 200, "anonymous public reads need no database");
  t.equal((await fetch(`${env.url}/api/inventory`)).status, 401, "and anonymous is still denied what it was denied");
  const ready = await fetch(`${env.url}/readyz`);
  t.equal(ready.status, 503);
  t.match(await ready.json(), { checks: { database: "failing" } });

  await relay.restore();
  let status = 0;
  for (let i = 0; i < 50 && status !== 403; i++) {
    status = (await fetch(`${env.url}/api/inventory`, { headers: bearer })).status;
    if (status !== 403) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(status, 403, "recovers without a restart");
  t.equal((await fetch(`${env.url}/readyz`)).status, 200);
});
