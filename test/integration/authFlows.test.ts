// Better Auth through the gateway on real PostgreSQL: sign-up with email verification, password
// reset, the users CLI, cookie attributes and the audit trail.
import t from "tap";
import pg from "pg";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";

const skip = await serviceGate("postgres");

t.test("auth flows on PostgreSQL", { skip }, async (t) => {
  const env: GatewayEnv = await startGatewayEnv({ postgres: true });
  t.teardown(() => env.close());
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${env.url}${path}`, { method: "POST", headers: { "content-type": "application/json", origin: env.url, ...headers }, body: JSON.stringify(body), redirect: "manual" });
  const mail = async (to: string, kind: string): Promise<{ token: string; text: string }> => {
    const { rows } = await db.query<{ token: string; text: string }>("SELECT token, text FROM mail_outbox WHERE \"to\" = $1 AND kind = $2 ORDER BY id DESC LIMIT 1", [to, kind]);
    const row = rows[0];
    if (row === undefined) throw new Error(`no ${kind} mail to ${to}`);
    return row;
  };

  await t.test("sign-up, verification by mail, sign-in", async (t) => {
    const email = "new.farmer@example.com";
    const password = "correct horse battery staple";
    const signUp = await post("/api/auth/sign-up/email", { email, password, name: "New Farmer" });
    t.equal(signUp.status, 200, "sign-up accepted");
    t.equal(signUp.headers.get("set-auth-token"), null, "no session before the address is verified");
    const early = await post("/api/auth/sign-in/email", { email, password });
    t.equal(early.status, 403, "sign-in refused until verified");

    const { token, text } = await mail(email, "verify-email");
    t.match(text, `${env.url}/api/auth/verify-email?token=`, "the mail carries a link to the gateway");
    const verify = await fetch(`${env.url}/api/auth/verify-email?token=${encodeURIComponent(token)}`, { redirect: "manual" });
    t.ok(verify.status === 200 || verify.status === 302, `verification link works (${verify.status})`);

    const signIn = await post("/api/auth/sign-in/email", { email, password });
    t.equal(signIn.status, 200);
    const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="));
    t.ok(cookie, "session cookie set");
    t.match(cookie ?? "", /HttpOnly/i);
    t.match(cookie ?? "", /SameSite=Lax/i);
    t.notMatch(cookie ?? "", /Secure/i, "not Secure on an http public URL");
    t.match(cookie ?? "", /Max-Age=604800/, "7-day session");
    const token2 = signIn.headers.get("set-auth-token") ?? "";
    const shop = await fetch(`${env.url}/api/shops`, { method: "POST", headers: { authorization: `Bearer ${token2}`, "content-type": "application/json" }, body: JSON.stringify({ name: "Fresh" }) });
    t.equal(shop.status, 201, "a new account gets the user role");

    const { rows } = await db.query<{ password: string }>(`SELECT a.password FROM account a JOIN "user" u ON u.id = a."userId" WHERE u.email = $1`, [email]);
    t.match(rows[0]?.password ?? "", /^\$argon2id\$/, "passwords are hashed with argon2id");
  });

  await t.test("password reset by mail revokes the old password", async (t) => {
    const email = "user@demo.gerbang.dev";
    const request = await post("/api/auth/request-password-reset", { email, redirectTo: "/" });
    t.equal(request.status, 200);
    const { token } = await mail(email, "reset-password");
    const reset = await post("/api/auth/reset-password", { newPassword: "a brand new passphrase", token });
    t.equal(reset.status, 200);
    t.equal((await post("/api/auth/sign-in/email", { email, password: "demo-user-password" })).status, 401, "old password refused");
    t.equal((await post("/api/auth/sign-in/email", { email, password: "a brand new passphrase" })).status, 200, "new password works");
  });

  await t.test("auth routes refuse cross-site and non-JSON posts", async (t) => {
    const form = await fetch(`${env.url}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "email=a&password=b" });
    t.equal(form.status, 415);
    t.equal(((await form.json()) as { error: { code: string } }).error.code, "UNSUPPORTED_MEDIA_TYPE");
    const evil = await post("/api/auth/sign-in/email", { email: "x@example.com", password: "whatever-password" }, { origin: "https://evil.example" });
    t.equal(evil.status, 403);
    t.equal(((await evil.json()) as { error: { code: string } }).error.code, "ORIGIN_NOT_TRUSTED");
  });

  await t.test("gerbang users create makes a verified user with attributes", async (t) => {
    const run = await runGerbang(["users", "create", "--email", "rina@example.com", "--password", "rina-strong-password", "--role", "sales", "--name", "Rina", "--attr", "region=apac"], {
      DATABASE_URL: env.databaseUrl ?? "",
    });
    t.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim().split("\n").at(-1) ?? "";
    t.match(id, /^[A-Za-z0-9]{16,}$/, "prints the new id");
    const { rows } = await db.query<{ role: string; region: string; emailVerified: boolean }>(`SELECT role, region, "emailVerified" FROM "user" WHERE id = $1`, [id]);
    t.same(rows[0], { role: "sales", region: "apac", emailVerified: true });
    const signIn = await post("/api/auth/sign-in/email", { email: "rina@example.com", password: "rina-strong-password" });
    t.equal(signIn.status, 200);
    const inventory = await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${signIn.headers.get("set-auth-token")}` } });
    t.equal(inventory.status, 200, "the sales role applies");

    const bad = await runGerbang(["users", "create", "--email", "x@example.com", "--password", "x-strong-password", "--role", "root"], { DATABASE_URL: env.databaseUrl ?? "" });
    t.equal(bad.code, 1);
    t.match(bad.stderr, /unknown role root/);
    const usage = await runGerbang(["users", "create", "--email", "x@example.com"], { DATABASE_URL: env.databaseUrl ?? "" });
    t.equal(usage.code, 2);
  });

  await t.test("every decision is audited with reason and policy version", async (t) => {
    await fetch(`${env.url}/api/inventory`);
    await fetch(`${env.url}/api/products`);
    let rows: Array<{ path: string; allowed: boolean; reason: string; policy_version: string; status: number; rule_id: string | null }> = [];
    for (let i = 0; i < 50 && rows.length < 2; i++) {
      ({ rows } = await db.query(`SELECT path, allowed, reason, policy_version, status, rule_id FROM audit_event WHERE path IN ('/api/inventory', '/api/products') AND principal_id IS NULL ORDER BY id`));
      if (rows.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    const denied = rows.find((r) => r.path === "/api/inventory");
    const allowed = rows.find((r) => r.path === "/api/products");
    t.match(denied, { allowed: false, reason: "NO_MATCHING_RULE", policy_version: "2026-12-07", status: 401 });
    t.match(allowed, { allowed: true, reason: "ALLOWED_BY_RULE", rule_id: "anonymous.products.read", status: 200 });
  });

  const signIn = async (email: string, password: string): Promise<{ cookie: string; token: string; userId: string; sessionId: string }> => {
    const response = await post("/api/auth/sign-in/email", { email, password });
    if (response.status !== 200) throw new Error(`sign-in ${email}: ${response.status}`);
    const cookie = (response.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token=")) ?? "").split(";")[0] ?? "";
    const userId = ((await response.json()) as { user: { id: string } }).user.id;
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM session WHERE "userId" = $1 ORDER BY "createdAt" DESC LIMIT 1`, [userId]);
    return { cookie, token: response.headers.get("set-auth-token") ?? "", userId, sessionId: rows[0]?.id ?? "" };
  };
  const codeOf = async (response: Response): Promise<string> => ((await response.json()) as { error: { code: string } }).error.code;

  await t.test("sliding refresh renews the browser's cookie through the proxy", async (t) => {
    const { cookie, sessionId } = await signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
    // A session last extended six days ago is due for its sliding refresh (updateAge is one day).
    await db.query(`UPDATE session SET "expiresAt" = now() + interval '1 day', "updatedAt" = now() - interval '6 days' WHERE id = $1`, [sessionId]);
    const first = await fetch(`${env.url}/api/products`, { headers: { cookie } });
    t.equal(first.status, 200);
    const renewed = first.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="));
    t.ok(renewed, "the proxied response carries the renewed session cookie");
    t.match(renewed ?? "", /Max-Age=604800/);
    t.match(renewed ?? "", /HttpOnly/i);
    t.equal(renewed?.split(";")[0], cookie, "same session, new lifetime");
    const { rows } = await db.query<{ days: number }>(`SELECT extract(epoch FROM "expiresAt" - now()) / 86400 AS days FROM session WHERE id = $1`, [sessionId]);
    t.ok(Number(rows[0]?.days) > 6.9, "the session was extended in the database");
    const second = await fetch(`${env.url}/api/products`, { headers: { cookie } });
    t.same(second.headers.getSetCookie(), [], "no cookie again until the next refresh is due");
  });

  await t.test("an expired session is 401, by cookie and by bearer token", async (t) => {
    const { cookie, token, sessionId } = await signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
    await db.query(`UPDATE session SET "expiresAt" = now() - interval '1 minute' WHERE id = $1`, [sessionId]);
    const credentials: Array<Record<string, string>> = [{ cookie }, { authorization: `Bearer ${token}` }];
    for (const headers of credentials) {
      const response = await fetch(`${env.url}/api/products`, { headers });
      t.equal(response.status, 401, `${Object.keys(headers)[0]}: 401, not anonymous`);
      t.equal(await codeOf(response), "INVALID_CREDENTIALS");
      t.match(response.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
    }
  });

  await t.test("a banned user's live session is 401", async (t) => {
    const { token, userId } = await signIn("rina@example.com", "rina-strong-password");
    await db.query(`UPDATE "user" SET banned = true WHERE id = $1`, [userId]);
    const response = await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(response.status, 401);
    t.equal(await codeOf(response), "INVALID_CREDENTIALS");
  });
});
