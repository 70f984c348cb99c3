// Issue 18, erasure: an account deleted by its user (POST /api/account/delete) or an operator
// (`gerbang users delete`) loses sign-in, sessions and keys on both instances within a second, under
// load and with a one-minute session cache; `users restore` undoes it during the grace period; the
// purge (by the CLI, and by an instance's own check) leaves no email, name, attribute or credential of
// the user in any table, audit events keep ids only, and `gerbang audit verify` still passes.
import t from "tap";
import { eventually } from "../helpers/eventually.ts";
import { errorOf } from "../helpers/catalogueError.ts";
import { bearer, refusedWithin, startFleet, underLoad } from "../helpers/fleetUnderLoad.ts";
import type { SignedIn } from "../helpers/gatewayEnv.ts";

const fleet = await startFleet();
t.teardown(() => fleet.close());
const { env, a, b, db, cli } = fleet;

const PASSWORD = "erasure-test-password-1";
async function createUser(email: string, name: string): Promise<string> {
  const run = await cli("users", "create", "--email", email, "--password", PASSWORD, "--role", "user", "--name", name, "--attr", "region=eu");
  if (run.code !== 0) throw new Error(run.stderr);
  return run.stdout.trim().split("\n").at(-1) ?? "";
}
const signInStatus = async (base: string, email: string): Promise<number> =>
  (await fetch(`${base}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: base }, body: JSON.stringify({ email, password: PASSWORD }) })).status;
const createKey = async (s: SignedIn): Promise<string> => {
  const created = await fetch(`${a}/api/keys`, { method: "POST", headers: { ...bearer(s), "content-type": "application/json", origin: a }, body: JSON.stringify({ name: "feed", scopes: ["catalog:read"], expiresIn: "1d" }) });
  return ((await created.json()) as { key: string }).key;
};
const audited = async (action: string, target: string, reason?: string): Promise<boolean> =>
  eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE action = $1 AND target = $2 AND allowed AND ($3::text IS NULL OR reason = $3)", [action, target, reason ?? null])).rowCount ?? 0) > 0, 5000);

// Deleted first, with no grace: the instances' own check (a minute after their start) purges it.
const lateEmail = "erasure-late@example.test";
const lateId = await createUser(lateEmail, "Wayan Late");
const lateDeleted = await cli("users", "delete", lateEmail, "--grace-days", "0");

t.test("a user deletes their own account: refused on both instances within a second, then restored by an operator", async (t) => {
  const email = "erasure-self@example.test";
  const id = await createUser(email, "Siti Self");
  const user = await env.signIn(email, PASSWORD);
  const key = await createKey(user);
  t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status, 200, "the key works on B (and is cached there)");

  // Refused without a person's own, recent sign-in.
  const byKey = await fetch(`${a}/api/account/delete`, { method: "POST", headers: { "x-api-key": key } });
  t.equal(byKey.status, 403);
  t.equal(errorOf(await byKey.text()).reason, "KEYS_CANNOT_EXPORT");
  t.equal((await fetch(`${a}/api/account/delete`, { method: "POST" })).status, 401);
  const stale = await env.signIn(email, PASSWORD);
  await db.query(`UPDATE session SET "createdAt" = now() - interval '2 hours' WHERE "userId" = $1 AND "createdAt" = (SELECT max("createdAt") FROM session WHERE "userId" = $1)`, [id]);
  const old = await fetch(`${b}/api/account/delete`, { method: "POST", headers: bearer(stale) });
  t.equal(old.status, 403, "a two-hour-old sign-in may not delete the account");
  t.equal(errorOf(await old.text()).reason, "FRESH_SIGN_IN_REQUIRED");
  t.equal((await fetch(`${b}/api/orders`, { headers: bearer(user) })).status, 200, "nothing was deleted");

  let answer: Record<string, unknown> = {};
  const load = await underLoad([a, b], "/api/orders", bearer(user), 200, async () => {
    const response = await fetch(`${a}/api/account/delete`, { method: "POST", headers: bearer(user) });
    t.equal(response.status, 200);
    answer = (await response.json()) as Record<string, unknown>;
  });
  t.match(answer, { deleted: true, keysRevoked: 1 });
  t.ok(load.before > 0, "the session was in use on both instances before");
  t.equal(load.lateAllowed, 0, "no request started a second after the deletion was allowed");
  t.ok(refusedWithin(load, 1000), `refused on both within a second: ${JSON.stringify(load.refusedAfterMs)}`);
  t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status, 401, "the key is refused on B");
  t.not(await signInStatus(b, email), 200, "sign-in is refused");
  t.ok(await audited("user.deleted", id), "audited by id");

  const shown = JSON.parse((await cli("users", "show", email, "--json")).stdout) as Record<string, unknown>;
  t.match(shown, { banned: true, purged: false, deletedAt: String, purgeAfter: String });
  const grace = Date.parse(String(shown.purgeAfter)) - Date.parse(String(shown.deletedAt));
  t.equal(grace, 30 * 86_400_000, "purge due after auth.erasureGraceDays (30)");
  const unban = await cli("users", "unban", email);
  t.equal(unban.code, 1, "a deletion is not lifted by unban");
  t.match(unban.stderr, /users restore/);
  t.equal((await cli("users", "delete", email)).code, 1, "already deleted");
  const early = await cli("users", "purge", "--email", email);
  t.equal(early.code, 1, "not due yet");
  t.match(early.stderr, /grace period runs until/);
  t.equal((await cli("users", "purge", "--now")).code, 2, "--now names one user");

  // Whatever lifts the ban fields (Better Auth's admin routes have several ways), a deleted account gets no session.
  await db.query(`UPDATE "user" SET banned = false, "banReason" = NULL WHERE id = $1`, [id]);
  const unbanned = await fetch(`${b}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: b }, body: JSON.stringify({ email, password: PASSWORD }) });
  t.equal(unbanned.status, 403, "sign-in refused by the deletion itself");
  t.match(await unbanned.json(), { code: "ACCOUNT_DELETED" });
  t.equal((await cli("users", "ban", email)).code, 1, "a deleted account is not banned (the ban would outlast a restore)");
  const restore = await cli("users", "restore", email, "--json");
  t.equal(restore.code, 0, restore.stderr);
  t.match(JSON.parse(restore.stdout), { banned: false, deletedAt: null, announced: true });
  t.equal(await signInStatus(b, email), 200, "restored: sign-in works again");
  t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": key } })).status, 401, "revoked keys stay revoked");
  t.ok(await audited("user.restored", id));
});

t.test("Better Auth's hard deletions are refused, and its admin may not unban or impersonate a deleted account", async (t) => {
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  for (const path of ["/api/auth/delete-user", "/api/auth/admin/remove-user"]) {
    const response = await fetch(`${a}${path}`, { method: "POST", headers: { ...bearer(admin), "content-type": "application/json" }, body: JSON.stringify({ userId: lateId, password: "demo-admin-password" }) });
    t.equal(response.status, 404, path);
    t.match(errorOf(await response.text()), { code: "ROUTE_NOT_FOUND", reason: "SOFT_DELETE_ONLY" });
  }
  t.equal((await db.query(`SELECT 1 FROM "user" WHERE id = $1`, [lateId])).rowCount, 1, "the row is still there");
  for (const path of ["/api/auth/admin/unban-user", "/api/auth/admin/impersonate-user"]) {
    const response = await fetch(`${a}${path}`, { method: "POST", headers: { ...bearer(admin), "content-type": "application/json", origin: a }, body: JSON.stringify({ userId: lateId }) });
    t.equal(response.status, 422, `${path}: a deleted account is not unbanned or impersonated`);
    t.match(errorOf(await response.text()).message, /users restore/);
  }
  t.match((await db.query(`SELECT banned FROM "user" WHERE id = $1`, [lateId])).rows[0], { banned: true });
});

t.test("deleting an admin ends the sessions in which they impersonate someone; impersonation cannot delete the account", async (t) => {
  const adminEmail = "erasure-admin@example.test";
  await (async () => {
    const run = await cli("users", "create", "--email", adminEmail, "--password", PASSWORD, "--role", "admin");
    if (run.code !== 0) throw new Error(run.stderr);
  })();
  const admin = await env.signIn(adminEmail, PASSWORD);
  const targetEmail = "erasure-impersonated@example.test";
  const targetId = await createUser(targetEmail, "Made Impersonated");
  const started = await fetch(`${a}/api/auth/admin/impersonate-user`, { method: "POST", headers: { ...bearer(admin), "content-type": "application/json", origin: a }, body: JSON.stringify({ userId: targetId }) });
  t.equal(started.status, 200, await started.clone().text());
  const impersonation = started.headers.get("set-auth-token") ?? "";
  const as = { authorization: `Bearer ${impersonation}` };
  t.equal((await fetch(`${b}/api/orders`, { headers: as })).status, 200, "the impersonation session works (and is cached on B)");
  const selfDelete = await fetch(`${a}/api/account/delete`, { method: "POST", headers: as });
  t.equal(selfDelete.status, 403);
  t.equal(errorOf(await selfDelete.text()).reason, "IMPERSONATION");
  t.equal((await cli("users", "delete", adminEmail)).code, 0);
  t.ok(await eventually(async () => (await fetch(`${b}/api/orders`, { headers: as })).status === 401, 1000), "the deleted admin's impersonation ended on B within a second");
  t.not(await signInStatus(a, targetEmail), 403, "the impersonated user is not affected");
});

/** Every row of every table that mentions one of `needles` (case-insensitive): table names. */
async function mentions(needles: string[]): Promise<string[]> {
  const tables = await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
  const found: string[] = [];
  for (const { table_name: table } of tables.rows) {
    for (const needle of needles) {
      const hit = await db.query(`SELECT 1 FROM "${table.replaceAll('"', '""')}" x WHERE row_to_json(x)::text ILIKE $1 LIMIT 1`, [`%${needle}%`]);
      if ((hit.rowCount ?? 0) > 0) found.push(`${table}: ${needle}`);
    }
  }
  return found;
}

t.test("an operator deletes and purges: no personal data left anywhere, the audit chain verifies", async (t) => {
  const email = "erasure-purged@example.test";
  const name = "Ketut Purgeable";
  const id = await createUser(email, name);
  const user = await env.signIn(email, PASSWORD);
  await createKey(user);
  t.equal((await fetch(`${b}/api/orders`, { headers: bearer(user) })).status, 200);
  t.equal((await fetch(`${b}/api/inventory`, { headers: bearer(user) })).status, 403, "a denied request: an audit event naming the user");
  const reset = await fetch(`${a}/api/auth/request-password-reset`, { method: "POST", headers: { "content-type": "application/json", origin: a }, body: JSON.stringify({ email, redirectTo: `${a}/reset` }) });
  t.equal(reset.status, 200);
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM mail_outbox WHERE \"to\" = $1", [email])).rowCount ?? 0) > 0, 5000), "a reset mail is queued");
  t.ok((await mentions([email, name])).length > 0, "before: the user's data is in the database");

  const deleted = await cli("users", "delete", email, "--grace-days", "0", "--json");
  t.equal(deleted.code, 0, deleted.stderr);
  t.match(JSON.parse(deleted.stdout), { user: id, sessionsRevoked: 1, announced: true });
  t.ok(await eventually(async () => (await fetch(`${b}/api/orders`, { headers: bearer(user) })).status === 401, 1000), "refused on B within a second");

  const purge = await cli("users", "purge", "--email", email, "--json");
  t.equal(purge.code, 0, purge.stderr);
  t.same(JSON.parse(purge.stdout), { purged: [id] });
  t.ok(await audited("user.purged", id));
  t.same(await mentions([email, name, "Ketut"]), [], "after: neither email nor name in any table");
  const [row] = (await db.query(`SELECT email, name, region, role, "purgedAt" FROM "user" WHERE id = $1`, [id])).rows as Array<Record<string, unknown>>;
  t.match(row, { email: `erased-${id}@erased.invalid`, name: "", region: null, role: null, purgedAt: Date }, "a tombstone keeps the id");
  for (const table of ["session", "account", "apikey"]) {
    const column = table === "apikey" ? '"referenceId"' : '"userId"';
    t.equal((await db.query(`SELECT 1 FROM ${table} WHERE ${column} = $1`, [id])).rowCount, 0, `no ${table} rows`);
  }
  t.ok(((await db.query("SELECT 1 FROM audit_event WHERE principal_id = $1 OR target = $1", [id])).rowCount ?? 0) >= 3, "audit events still name the id");
  t.not(await signInStatus(a, email), 200);
  t.equal((await cli("users", "restore", `erased-${id}@erased.invalid`)).code, 1, "nothing left to restore");
  t.equal((await cli("users", "purge", "--email", email)).code, 1, "the email is gone");

  const verify = await cli("audit", "verify", "--json");
  t.equal(verify.code, 0, verify.stdout + verify.stderr);
});

t.test("each instance purges due users on its own (a minute after start, then hourly)", async (t) => {
  t.equal(lateDeleted.code, 0, lateDeleted.stderr);
  t.ok(await eventually(async () => ((await db.query(`SELECT 1 FROM "user" WHERE id = $1 AND "purgedAt" IS NOT NULL`, [lateId])).rowCount ?? 0) > 0, 90_000, 1000), "purged by an instance");
  t.ok(await audited("user.purged", lateId, "GRACE_PERIOD_OVER"), "audited as the instance's own");
  t.same(await mentions([lateEmail, "Wayan Late"]), []);
  t.equal((await db.query("SELECT 1 FROM audit_event WHERE action = 'user.purged' AND target = $1", [lateId])).rowCount, 1, "one instance purged it, once");
});
