// A scenario with every kind of credential (a password, a session token and cookie, an API key, a
// password-reset token), run against a gateway logging at debug: no secret it used appears in its log
// output or in any audit column, while every answer carries its x-request-id and the access line names
// endpoint, decision, reason and status.
import t from "tap";
import pg from "pg";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { serviceGate } from "../helpers/services.ts";
import { eventually } from "../helpers/eventually.ts";
import { logCaughtUp } from "../helpers/logCaughtUp.ts";

const pgMissing = await serviceGate("postgres");
t.test("no secret reaches the log or the audit trail", { skip: pgMissing }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, config: { logLevel: "debug" } });
  t.teardown(() => env.close());
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  const password = "demo-user-password";
  const user = await env.signIn("user@demo.gerbang.dev", password);
  const secrets = [password, user.token, ...user.cookie.split(";").map((c) => c.split("=").slice(1).join("=")).filter((v) => v.length > 8)];

  const products = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${user.token}` } });
  await products.arrayBuffer();
  t.match(products.headers.get("x-request-id"), /^[0-9a-f-]{36}$/, "a forwarded answer names its request id");
  const denied = await fetch(`${env.url}/api/inventory`, { headers: { cookie: user.cookie } });
  const body = (await denied.json()) as { error: { requestId: string } };
  t.equal(denied.headers.get("x-request-id"), body.error.requestId, "an error names the same id in header and body");

  const made = await fetch(`${env.url}/api/keys`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "scan", scopes: ["catalog:read"] }) });
  const { key } = (await made.json()) as { key: string };
  secrets.push(key);
  await (await fetch(`${env.url}/api/products`, { headers: { "x-api-key": key } })).arrayBuffer();
  await (await fetch(`${env.url}/api/products?api_key=${encodeURIComponent(key)}`)).arrayBuffer();
  await (await fetch(`${env.url}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: env.url }, body: JSON.stringify({ email: "user@demo.gerbang.dev", password: "wrong-password-attempt" }) })).arrayBuffer();
  secrets.push("wrong-password-attempt");
  const reset = await fetch(`${env.url}/api/auth/request-password-reset`, { method: "POST", headers: { "content-type": "application/json", origin: env.url }, body: JSON.stringify({ email: "user@demo.gerbang.dev", redirectTo: `${env.url}/reset` }) });
  await reset.arrayBuffer();
  const tokens = await db.query<{ identifier: string; value: string }>("SELECT identifier, value FROM verification");
  // The reset token is in the identifier; the value is the user's id (which audit rows and access lines do name).
  const resetTokens = tokens.rows.filter((r) => r.identifier.startsWith("reset-password:")).map((r) => r.identifier.slice("reset-password:".length));
  t.equal(resetTokens.length, 1, "a reset token was issued");
  secrets.push(...resetTokens);
  await (await fetch(`${env.url}/api/auth/sign-out`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, origin: env.url } })).arrayBuffer();
  // Written in batches, off the request path: wait for the sign-in, the requests and the reset to be there.
  const count = async (): Promise<number> => Number((await db.query<{ n: string }>("SELECT count(*)::text AS n FROM audit_event")).rows[0]?.n ?? 0);
  t.ok(await eventually(async () => (await count()) >= 3), "the events are written");
  t.ok(await logCaughtUp(() => env.gateway.output()), "the log is written");

  const log = env.gateway.output();
  t.match(log, /"msg":"request"/, "access lines are written");
  t.match(log, /"endpoint":"inventory.list","status":403,[^\n]*"decision":"deny","reason":"NO_MATCHING_RULE"/, "the access line names endpoint, status, decision and reason");
  const audit = await db.query("SELECT * FROM audit_event");
  t.ok(audit.rows.length >= 3, "audit rows were written");
  const auditText = JSON.stringify(audit.rows);
  t.ok(secrets.length >= 5, `${secrets.length} secrets to look for`);
  for (const secret of secrets) {
    t.notOk(log.includes(secret), `the log does not contain a ${secret.length}-character secret`);
    t.notOk(auditText.includes(secret), `the audit trail does not contain a ${secret.length}-character secret`);
  }
});

t.test("at trace level the headers are logged, with credentials and configured headers redacted", { skip: pgMissing }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, config: { logLevel: "trace", logRedactHeaders: ["x-partner-secret"] } });
  t.teardown(() => env.close());
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const partnerSecret = "partner-secret-value-0123456789";
  const sent = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${user.token}`, cookie: user.cookie, "x-partner-secret": partnerSecret, "x-visible": "visible-value" } });
  await sent.arrayBuffer();
  const headerLines = (): string[] => env.gateway.output().split("\n").filter((l) => l.includes('"msg":"headers"'));
  await eventually(() => headerLines().some((l) => l.includes("visible-value")));
  const lines = headerLines();
  t.ok(lines.length >= 2, "each request logs its headers at trace level");
  const line = lines.find((l) => l.includes("visible-value")) ?? "";
  t.match(line, /"x-visible":"visible-value"/, "an ordinary header is logged as sent");
  t.match(line, /"authorization":"\[redacted\]"/, "authorization is redacted");
  t.match(line, /"cookie":"\[redacted\]"/, "cookie is redacted");
  t.match(line, /"x-partner-secret":"\[redacted\]"/, "a header the config names is redacted");
  const signInLine = lines.find((l) => l.includes("set-cookie")) ?? "";
  t.match(signInLine, /"set-cookie":"\[redacted\]"/, "the sign-in's set-cookie is redacted");
  t.ok(await logCaughtUp(() => env.gateway.output()), "the log is written");
  const log = env.gateway.output();
  for (const secret of [user.token, partnerSecret, "demo-user-password", user.cookie.split("=").slice(1).join("=")]) t.notOk(log.includes(secret), `the log does not contain a ${secret.length}-character secret`);
});
