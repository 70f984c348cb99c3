// Issue 18: two-factor authentication (TOTP, backup codes) and the admin role that needs it. With the
// default auth.twoFactor.requiredForRoles (["admin"]), an admin signed in with a password alone acts as
// a user: what only the admin role allows is refused with SECOND_FACTOR_REQUIRED (the policy's routes,
// Better Auth's admin routes, and an admin's API key). Enrolling replaces the session with one that has
// the factor; later sign-ins need a code from the authenticator or a backup code (each used once), and
// guessing codes locks the account's second factor. The TOTP codes come from RFC 6238 computed here
// from the otpauth:// URI, as an authenticator app would compute them.
import t from "tap";
import { createHmac } from "node:crypto";
import pg from "pg";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { errorOf } from "../helpers/catalogueError.ts";

const ADMIN_EMAIL = "admin@demo.gerbang.dev";
const ADMIN_PASSWORD = "demo-admin-password";
const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false, config: { auth: { twoFactor: { requiredForRoles: ["admin"] } } } });
t.teardown(() => env.close());
// Seeding runs right after the gateway listens: this sign-in waits for it.
await env.signIn(ADMIN_EMAIL, ADMIN_PASSWORD);

const ADMIN = { email: ADMIN_EMAIL, password: ADMIN_PASSWORD };

/** A tiny cookie jar: what a browser would keep between requests. */
class Jar {
  readonly cookies = new Map<string, string>();
  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const at = pair.indexOf("=");
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1);
      if (value === "" || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  get header(): string {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join("; ");
  }
}

async function post(jar: Jar, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const response = await fetch(`${env.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: env.url, ...(jar.cookies.size > 0 ? { cookie: jar.header } : {}) },
    body: JSON.stringify(body),
  });
  jar.take(response);
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: response.status, json, text };
}

const get = async (jar: Jar, path: string): Promise<{ status: number; text: string }> => {
  const response = await fetch(`${env.url}${path}`, { headers: jar.cookies.size > 0 ? { cookie: jar.header } : {} });
  return { status: response.status, text: await response.text() };
};

/** RFC 4648 base32 (the otpauth secret) and RFC 6238 TOTP with SHA-1, 6 digits, 30 s. */
function base32(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}
function totp(secret: Buffer, at = Date.now()): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", secret).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
/** A code valid for none of the windows the server accepts (now ± one period). */
function wrongCode(secret: Buffer): string {
  const near = new Set([-1, 0, 1].map((k) => totp(secret, Date.now() + k * 30_000)));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, "0");
    if (!near.has(code)) return code;
  }
}

const secrets: string[] = [];
let secret: Buffer = Buffer.alloc(0);
let backupCodes: string[] = [];

const signInWithPassword = async (): Promise<{ jar: Jar; status: number; json: Record<string, unknown> }> => {
  const jar = new Jar();
  const answer = await post(jar, "/api/auth/sign-in/email", ADMIN);
  return { jar, status: answer.status, json: answer.json };
};

t.test("an admin without a second factor acts as a user, and is told why", async (t) => {
  const { jar, status, json } = await signInWithPassword();
  t.equal(status, 200, "no factor enrolled yet: the password signs in");
  t.notOk(json.twoFactorRedirect, "no second step asked for");
  t.equal((await get(jar, "/api/orders")).status, 200, "what the user role allows still works");
  const refused = await get(jar, "/admin/api/users");
  t.equal(refused.status, 403);
  t.match(errorOf(refused.text), { code: "FORBIDDEN", reason: "SECOND_FACTOR_REQUIRED" });
  t.match(errorOf(refused.text).message, /admin.*second factor/);
  const betterAuthAdmin = await get(jar, "/api/auth/admin/list-users");
  t.equal(betterAuthAdmin.status, 403, "Better Auth's own admin routes too");
  t.match(errorOf(betterAuthAdmin.text), { reason: "SECOND_FACTOR_REQUIRED" });
  const ban = await post(jar, "/api/auth/admin/ban-user", { userId: "anyone" });
  t.equal(ban.status, 403, "and its writes");
});

t.test("enrolling: the password, a TOTP URI and backup codes, then a code proves it", async (t) => {
  const { jar } = await signInWithPassword();
  t.equal((await post(jar, "/api/auth/two-factor/enable", { password: "wrong-password-123" })).status, 400, "the password is checked");
  const enabled = await post(jar, "/api/auth/two-factor/enable", { password: ADMIN.password });
  t.equal(enabled.status, 200, enabled.text);
  const uri = new URL(String(enabled.json.totpURI));
  t.equal(uri.protocol, "otpauth:");
  t.match(decodeURIComponent(uri.pathname), /Gerbang:admin@demo\.gerbang\.dev/, "the issuer and the account an app shows");
  secret = base32(uri.searchParams.get("secret") ?? "");
  secrets.push(uri.searchParams.get("secret") ?? "");
  backupCodes = enabled.json.backupCodes as string[];
  t.equal(backupCodes.length, 10, "ten backup codes");
  secrets.push(...backupCodes);
  t.equal((await get(jar, "/admin/api/users")).status, 403, "not verified yet: still no admin");
  const before = jar.header;
  const verified = await post(jar, "/api/auth/two-factor/verify-totp", { code: totp(secret) });
  t.equal(verified.status, 200, verified.text);
  t.not(jar.header, before, "the session was replaced");
  t.equal((await get(jar, "/admin/api/users")).status, 200, "the new session has the second factor: admin");
  t.equal((await get(jar, "/api/auth/admin/list-users")).status, 200, "Better Auth's admin routes too");
  const old = new Jar();
  for (const pair of before.split("; ")) old.cookies.set(pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1));
  t.equal((await get(old, "/api/orders")).status, 401, "the session without the factor is gone (not served from a cache)");
});

t.test("a later sign-in needs the code: the password alone gives no session", async (t) => {
  const { jar, status, json } = await signInWithPassword();
  t.equal(status, 200);
  t.equal(json.twoFactorRedirect, true, "a second step is asked for");
  t.equal((await get(jar, "/api/orders")).status, 401, "the password alone is no session");
  const wrong = await post(jar, "/api/auth/two-factor/verify-totp", { code: wrongCode(secret) });
  t.equal(wrong.status, 401, "a wrong code is refused");
  const right = await post(jar, "/api/auth/two-factor/verify-totp", { code: totp(secret) });
  t.equal(right.status, 200, right.text);
  t.equal((await get(jar, "/admin/api/users")).status, 200, "signed in with the factor: admin");
  t.equal((await post(jar, "/api/auth/two-factor/verify-totp", { code: totp(secret) })).status < 300, true, "verifying again in a session changes nothing");
});

t.test("a backup code signs in once; used again it is refused", async (t) => {
  const code = backupCodes[0] ?? "";
  const first = await signInWithPassword();
  const used = await post(first.jar, "/api/auth/two-factor/verify-backup-code", { code });
  t.equal(used.status, 200, used.text);
  t.equal((await get(first.jar, "/admin/api/users")).status, 200, "a backup code is a second factor");
  const second = await signInWithPassword();
  t.equal((await post(second.jar, "/api/auth/two-factor/verify-backup-code", { code })).status, 401, "the same code again: refused");
  t.equal((await get(second.jar, "/api/orders")).status, 401);
});

t.test("an admin's API key never exercises the admin role", async (t) => {
  const { jar } = await signInWithPassword();
  await post(jar, "/api/auth/two-factor/verify-totp", { code: totp(secret) });
  const created = await post(jar, "/api/keys", { name: "automation", scopes: ["inventory:read"], expiresIn: "1d" });
  t.equal(created.status, 201, created.text);
  const key = String(created.json.key);
  secrets.push(key);
  t.equal((await get(jar, "/api/inventory")).status, 200, "the admin's session (with the factor) reads the inventory");
  const refused = await fetch(`${env.url}/api/inventory`, { headers: { "x-api-key": key } });
  t.equal(refused.status, 403, "the key, scoped to exactly that, does not: the admin role is withheld from it");
  const error = errorOf(await refused.text());
  t.equal(error.reason, "SECOND_FACTOR_REQUIRED");
  t.match(error.message, /API key cannot present a second factor/);
});

t.test("guessing codes locks the second factor: then even the right code is refused", async (t) => {
  const { jar } = await signInWithPassword();
  let locked = false;
  for (let i = 0; i < 12 && !locked; i++) {
    const answer = await post(jar, "/api/auth/two-factor/verify-totp", { code: wrongCode(secret) });
    t.not(answer.status, 200);
    locked = answer.status === 429 || /LOCK|TOO_MANY/i.test(answer.text);
  }
  t.ok(locked, "refused as locked before a dozen guesses (five wrong codes lock it)");
  const retry = await signInWithPassword();
  const right = await post(retry.jar, "/api/auth/two-factor/verify-totp", { code: totp(secret) });
  t.equal(right.status, 429, "the right code while locked: refused");
  t.match(right.text, /ACCOUNT_TEMPORARILY_LOCKED/);
});

t.test("the audit trail records enrolment and verification, and none of the secrets", { skip: env.databaseUrl === null ? "needs PostgreSQL to read the audit rows" : false }, async (t) => {
  await new Promise((r) => setTimeout(r, 500));
  const client = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await client.connect();
  t.teardown(() => client.end());
  const rows = (await client.query<{ row: string; action: string; allowed: boolean }>("SELECT row_to_json(e)::text AS row, action, allowed FROM audit_event e")).rows;
  const actions = new Set(rows.map((r) => `${r.action}:${r.allowed}`));
  for (const expected of ["auth.two_factor_enrolment_started:true", "auth.two_factor_verified:true", "auth.two_factor_verified:false"]) t.ok(actions.has(expected), expected);
  const secondFactorDenials = rows.filter((r) => r.row.includes("SECOND_FACTOR_REQUIRED"));
  t.ok(secondFactorDenials.length >= 1, "the refusals are audited with their reason");
  const all = rows.map((r) => r.row).join("\n");
  for (const s of secrets) t.notOk(all.includes(s), "no TOTP secret, backup code or key in the audit trail");
  const stored = await client.query<{ secret: string; backupCodes: string }>('SELECT secret, "backupCodes" FROM two_factor');
  for (const row of stored.rows) for (const s of secrets) t.notOk(row.secret.includes(s) || row.backupCodes.includes(s), "stored encrypted");
});
