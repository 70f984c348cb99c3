// The audit trail end to end, against a real gateway, PostgreSQL and CLI processes: a scripted
// scenario (sign-ins good and bad, an allowed and a denied request, key changes over HTTP and from the
// CLI, an admin's role change, sign-out) produces its events; search finds them by the CLI and over
// HTTP, where a user sees only their own; `gerbang audit verify` passes on the untouched trail and
// pinpoints each tampering made with direct SQL; pruning keeps the chains verifiable.
import t from "tap";
import pg from "pg";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";
import { serviceGate } from "../helpers/services.ts";
import { eventually } from "../helpers/eventually.ts";

interface Finding {
  kind: string;
  id?: string;
  message: string;
}
interface Report {
  ok: boolean;
  chains: number;
  rows: number;
  checkpoints: number;
  findings: Finding[];
}
interface EventView {
  id: string;
  action: string;
  decision: string;
  reason: string;
  actor: string | null;
  target: string | null;
  authMethod: string;
}

const CLI_ENV = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };

const pgMissing = await serviceGate("postgres");
t.test("the audit trail: events, search, verification, tampering, retention", { skip: pgMissing }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, config: { audit: { flushIntervalMs: 50, checkpointIntervalMs: 1000 } } });
  t.teardown(() => env.close());
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], CLI_ENV);
  const json = { "content-type": "application/json", origin: env.url };

  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const wrong = await fetch(`${env.url}/api/auth/sign-in/email`, { method: "POST", headers: json, body: JSON.stringify({ email: "user@demo.gerbang.dev", password: "not-the-password" }) });
  t.equal(wrong.status, 401);
  await (await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${user.token}` } })).arrayBuffer();
  const denied = await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${user.token}` } });
  t.equal(denied.status, 403);
  const deniedId = denied.headers.get("x-request-id") ?? "";
  const made = await fetch(`${env.url}/api/keys`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "audited", scopes: ["catalog:read"] }) });
  const key = (await made.json()) as { id: string };
  await (await fetch(`${env.url}/api/keys/${key.id}`, { method: "DELETE", headers: { authorization: `Bearer ${user.token}` } })).arrayBuffer();
  const role = await fetch(`${env.url}/api/auth/admin/set-role`, { method: "POST", headers: { ...json, authorization: `Bearer ${admin.token}` }, body: JSON.stringify({ userId: user.userId, role: "user" }) });
  t.equal(role.status, 200, "the admin's role change went through");
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const asAdmin = async (path: string, body: unknown, token = admin.token): Promise<Response> =>
    fetch(`${env.url}/api/auth/admin/${path}`, { method: "POST", headers: { ...json, authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  t.equal((await asAdmin("ban-user", { userId: sales.userId })).status, 200, "a ban");
  t.equal((await asAdmin("unban-user", { userId: sales.userId })).status, 200, "an unban");
  // As a browser does it: Better Auth keeps the admin's own session in its admin_session cookie, which
  // stopping needs (a bearer-only client cannot stop an impersonation: Better Auth fails, the gateway says 503).
  const impersonating = await fetch(`${env.url}/api/auth/admin/impersonate-user`, { method: "POST", headers: { ...json, cookie: admin.cookie }, body: JSON.stringify({ userId: sales.userId }) });
  t.equal(impersonating.status, 200, "an impersonation");
  const cookies = impersonating.headers.getSetCookie().map((c) => c.split(";")[0] ?? "").filter((c) => !c.endsWith("=")).join("; ");
  const bearerStop = await asAdmin("stop-impersonating", {}, impersonating.headers.get("set-auth-token") ?? "");
  t.match(await bearerStop.json(), { error: { code: "MALFORMED_REQUEST", reason: "NO_ADMIN_SESSION_COOKIE" } }, "a bearer alone is told what stopping needs, not 503");
  await impersonating.arrayBuffer();
  const stop = await fetch(`${env.url}/api/auth/admin/stop-impersonating`, { method: "POST", headers: { ...json, cookie: cookies }, body: "{}" });
  t.equal(stop.status, 200, `and its end: ${stop.status === 200 ? "" : await stop.text()}`);
  const cliKey = await cli("keys", "create", "--owner", "buyer@demo.gerbang.dev", "--name", "from-cli", "--tier", "partner-basic", "--scopes", "catalog:read", "--json");
  t.equal(cliKey.code, 0, cliKey.stderr);
  const cliKeyId = (JSON.parse(cliKey.stdout.split("\n")[0] ?? "") as { id: string }).id;
  // Field names are the client's: every character COPY's text format escapes, its end marker and
  // null marker, and what PostgreSQL cannot store, must reach the row as they are (or storable) and hash alike.
  const hostileFields = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\.", "\\N", "nul\u0000x", "lone\ud800", "ünï😀"];
  const shop = await fetch(`${env.url}/api/shops`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "Kebun", region: "eu" }) });
  const shopId = ((await shop.json()) as { id: string }).id;
  const hostile = await fetch(`${env.url}/api/shops/${shopId}`, { method: "PATCH", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" }, body: JSON.stringify(Object.fromEntries(hostileFields.map((f) => [f, 1]))) });
  t.equal(hostile.status, 200, "the owner's write (only ownerId is closed to them), its field names recorded");
  const hostileId = hostile.headers.get("x-request-id") ?? "";
  for (const path of ["/api/products", "/api/shops", "/api/orders"]) await (await fetch(`${env.url}${path}`, { headers: { authorization: `Bearer ${user.token}` } })).arrayBuffer();
  const signOut = await fetch(`${env.url}/api/auth/sign-out`, { method: "POST", headers: { ...json, authorization: `Bearer ${user.token}` }, body: "{}" });
  t.equal(signOut.status, 200);
  // The gateway writes its events in order, in batches: once the sign-out is there, so is the rest.
  const written = async (action: string, actor: string): Promise<boolean> =>
    ((await db.query("SELECT 1 FROM audit_event WHERE action = $1 AND principal_id = $2", [action, actor])).rowCount ?? 0) > 0;
  t.ok(await eventually(() => written("auth.sign_out", user.userId)), "the scenario's events are written");
  // Retention counts whole seconds: the scenario's events are made over 2 s older than what follows,
  // so the prune below (cut between 1 and 2 s before this moment) deletes them and nothing later.
  await new Promise((r) => setTimeout(r, 2200));
  const firstPhaseEnded = Date.now();

  await t.test("the scenario's events, with actor, target and outcome", async (t) => {
    const search = await cli("audit", "search", "--actor", user.userId, "--json", "--limit", "1000");
    t.equal(search.code, 0, search.stderr);
    const events = search.stdout.trim().split("\n").map((l) => JSON.parse(l) as EventView);
    const has = (action: string, match: Partial<EventView>): boolean => events.some((e) => e.action === action && Object.entries(match).every(([k, v]) => e[k as keyof EventView] === v));
    t.ok(has("auth.sign_in", { decision: "allow", actor: user.userId, target: user.userId }), "the sign-in names its user");
    t.ok(has("request", { decision: "allow" }), "an allowed request");
    t.ok(has("request", { decision: "deny", reason: "NO_MATCHING_RULE" }), "a denied request");
    t.ok(has("key.created", { decision: "allow", target: key.id }), "the key created over HTTP");
    t.ok(has("key.revoked", { decision: "allow", target: key.id }), "and revoked");
    t.ok(has("auth.sign_out", { decision: "allow" }), "the sign-out");
    const failed = await cli("audit", "search", "--action", "auth.*", "--decision", "deny", "--json");
    const refusals = failed.stdout.trim().split("\n").map((l) => JSON.parse(l) as EventView);
    t.ok(refusals.some((e) => e.action === "auth.sign_in" && e.reason === "INVALID_EMAIL_OR_PASSWORD" && e.actor === null), "the failed sign-in, with Better Auth's code and no actor");
    const roleChange = await cli("audit", "search", "--action", "user.role_changed", "--json");
    const change = JSON.parse(roleChange.stdout.trim().split("\n")[0] ?? "{}") as EventView;
    t.same([change.actor, change.target], [admin.userId, user.userId], "the role change names the admin and the user");
    const adminEvents = (await cli("audit", "search", "--actor", admin.userId, "--action", "user.*", "--json")).stdout.trim().split("\n").map((l) => JSON.parse(l) as EventView);
    for (const action of ["user.banned", "user.unbanned", "user.impersonation_started"]) {
      t.ok(adminEvents.some((e) => e.action === action && e.target === sales.userId && e.decision === "allow"), `${action}, by the admin, of the user`);
    }
    const stopped = (await cli("audit", "search", "--action", "user.impersonation_stopped", "--json")).stdout.trim();
    t.match(stopped, /"decision":"allow"/, "the impersonation's end");
    const fromCli = await cli("audit", "search", "--action", "key.created", "--json");
    t.ok(fromCli.stdout.split("\n").some((l) => l.includes(cliKeyId) && l.includes('"authMethod":"cli"') && l.includes('"operator"')), "the CLI's key creation, by the shell's operator");
    const row = await db.query<{ decision_input: { fields?: string[] } }>("SELECT decision_input FROM audit_event WHERE request_id = $1", [hostileId]);
    t.same(row.rows[0]?.decision_input.fields, hostileFields.map((f) => f.replace("\u0000", "\ufffd").replace("\ud800", "\ufffd")), "hostile field names stored as sent (NUL and a lone surrogate as U+FFFD)");
    const byRequest = await cli("audit", "search", "--request-id", deniedId);
    t.match(byRequest.stdout, /request {2}deny {2}NO_MATCHING_RULE/, "found by request id, one line an event");
    const paged = await cli("audit", "search", "--limit", "2");
    t.match(paged.stderr, /more: --before \d+/, "a page says how to get the next");
    const bad = await cli("audit", "search", "--since", "yesterday");
    t.equal(bad.code, 2, "a bad time is a usage error");
  });

  await t.test("over HTTP a user sees only their own events; an admin sees all", async (t) => {
    const signIns = async (): Promise<number> => (await db.query("SELECT 1 FROM audit_event WHERE action = 'auth.sign_in' AND allowed AND principal_id = $1", [user.userId])).rowCount ?? 0;
    const before = await signIns();
    // Two sign-ins: the retention step below needs rows after its cut, one with a successor.
    await env.signIn("user@demo.gerbang.dev", "demo-user-password");
    const again = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
    t.ok(await eventually(async () => (await signIns()) >= before + 2), "the new sign-ins are written");
    const list = async (token: string, query: string): Promise<{ status: number; events: EventView[] }> => {
      const response = await fetch(`${env.url}/api/audit/events${query}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await response.json()) as { events?: EventView[] };
      return { status: response.status, events: body.events ?? [] };
    };
    const own = await list(again.token, "?limit=1000");
    t.equal(own.status, 200);
    t.ok(own.events.length > 3, "the user has events");
    t.ok(own.events.every((e) => e.actor === again.userId), "all of them their own");
    t.same((await list(again.token, `?actor=${admin.userId}`)).events, [], "asking for the admin's events finds none");
    const all = await list(admin.token, `?actor=${again.userId}&action=auth.sign_in`);
    t.ok(all.events.length >= 2, "the admin sees the user's sign-ins");
    t.equal((await list(admin.token, "?limit=5000")).status, 400, "a limit beyond the bound is refused");
    t.equal((await fetch(`${env.url}/api/audit/events`)).status, 401, "anonymous callers are refused");
  });

  // The final checkpoint: the gateway signs its chain head when it stops.
  await env.gateway.stop();

  const verify = async (): Promise<{ code: number | null; report: Report; text: string }> => {
    const run = await cli("audit", "verify", "--json");
    const text = await cli("audit", "verify");
    return { code: run.code, report: JSON.parse(run.stdout) as Report, text: text.stdout };
  };
  const intact = await verify();
  t.equal(intact.code, 0, intact.text);
  t.equal(intact.report.chains, 2, "the gateway's chain and the CLI's");
  t.ok(intact.report.checkpoints >= 2, "both signed a checkpoint");
  t.match(intact.text, /audit trail intact/);

  const { rows: chainRows } = await db.query<{ id: string; seq: string; instance: string; hash: string; reason: string }>(
    "SELECT id::text, seq::text, instance, hash, reason FROM audit_event WHERE instance NOT LIKE 'cli/%' ORDER BY audit_event.seq",
  );
  t.ok(chainRows.length >= 12, `the gateway's chain has ${chainRows.length} rows`);
  const at = (i: number): { id: string; seq: string; instance: string; hash: string; reason: string } => chainRows[i] as never;
  const instance = at(0).instance;
  const tampered = async (name: string, kind: string, id: string | undefined, tamper: string[], restore: string[]): Promise<void> => {
    for (const sql of tamper) await db.query(sql);
    const result = await verify();
    t.equal(result.code, 1, `${name}: verify fails`);
    t.equal(result.report.findings[0]?.kind, kind, `${name}: reported as ${kind}: ${result.report.findings[0]?.message ?? ""}`);
    if (id !== undefined) t.equal(result.report.findings[0]?.id, id, `${name}: at row ${id}`);
    t.match(result.text, /audit trail TAMPERED/);
    for (const sql of restore) await db.query(sql);
  };
  const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;
  const k = 5;
  await tampered("an edited row", "edited", at(k).id, [`UPDATE audit_event SET reason = 'ALLOWED_BY_RULE' WHERE id = ${at(k).id}`], [`UPDATE audit_event SET reason = ${q(at(k).reason)} WHERE id = ${at(k).id}`]);
  await db.query(`CREATE TEMP TABLE saved AS SELECT * FROM audit_event WHERE id = ${at(k).id}`);
  await tampered("a deleted row", "deleted", at(k + 1).id, [`DELETE FROM audit_event WHERE id = ${at(k).id}`], ["INSERT INTO audit_event SELECT * FROM saved", "DROP TABLE saved"]);
  const shiftUp = [`UPDATE audit_event SET seq = -seq WHERE instance = ${q(instance)} AND seq > ${at(k).seq}`, `UPDATE audit_event SET seq = -seq + 1 WHERE instance = ${q(instance)} AND seq < 0`];
  const shiftDown = [`UPDATE audit_event SET seq = -seq WHERE instance = ${q(instance)} AND seq > ${Number(at(k).seq) + 1}`, `UPDATE audit_event SET seq = -seq - 1 WHERE instance = ${q(instance)} AND seq < 0`];
  const forged = `INSERT INTO audit_event (id, instance, seq, action, auth_method, roles, allowed, reason, policy_version, prev_hash, hash)
    VALUES (999999, ${q(instance)}, ${Number(at(k).seq) + 1}, 'request', 'session', 'admin', true, 'ALLOWED_BY_RULE', '2026-12-01', ${q(at(k).hash)}, '${"f".repeat(64)}')`;
  await tampered("an inserted row", "inserted", "999999", [...shiftUp, forged], ["DELETE FROM audit_event WHERE id = 999999", ...shiftDown]);
  const swap = [
    `UPDATE audit_event SET seq = -1 WHERE id = ${at(k).id}`,
    `UPDATE audit_event SET seq = ${at(k).seq} WHERE id = ${at(k + 1).id}`,
    `UPDATE audit_event SET seq = ${at(k + 1).seq} WHERE id = ${at(k).id}`,
  ];
  const unswap = [
    `UPDATE audit_event SET seq = -1 WHERE id = ${at(k).id}`,
    `UPDATE audit_event SET seq = ${at(k + 1).seq} WHERE id = ${at(k + 1).id}`,
    `UPDATE audit_event SET seq = ${at(k).seq} WHERE id = ${at(k).id}`,
  ];
  await tampered("two rows reordered", "reordered", at(k + 1).id, swap, unswap);
  const last = chainRows.length - 1;
  await db.query(`CREATE TEMP TABLE tail AS SELECT * FROM audit_event WHERE instance = ${q(instance)} AND seq >= ${at(last - 1).seq}`);
  await tampered("a truncated tail", "truncated", undefined, [`DELETE FROM audit_event WHERE instance = ${q(instance)} AND seq >= ${at(last - 1).seq}`], ["INSERT INTO audit_event SELECT * FROM tail", "DROP TABLE tail"]);
  await tampered(
    "a row outside every chain",
    "unchained",
    "999998",
    ["INSERT INTO audit_event (id, action, auth_method, roles, allowed, reason, policy_version) VALUES (999998, 'request', 'session', 'admin', true, 'ALLOWED_BY_RULE', '2026-12-01')"],
    ["DELETE FROM audit_event WHERE id = 999998"],
  );
  // The gateway's final checkpoint, forged and then put back (a later step needs it to find a deleted tail).
  const finalCheckpoint = "(SELECT max(id) FROM audit_checkpoint WHERE kind <> 'legacy' AND instance NOT LIKE 'cli/%')";
  const { rows: signedHead } = await db.query<{ id: string; hash: string }>(`SELECT id::text, hash FROM audit_checkpoint WHERE id = ${finalCheckpoint}`);
  await tampered("a forged checkpoint", "checkpoint", undefined, [`UPDATE audit_checkpoint SET hash = repeat('a', 64) WHERE id = ${signedHead[0]?.id ?? "0"}`], [`UPDATE audit_checkpoint SET hash = ${q(signedHead[0]?.hash ?? "")} WHERE id = ${signedHead[0]?.id ?? "0"}`]);
  const restored = await verify();
  t.equal(restored.code, 0, `restored, the trail verifies again: ${restored.text}`);

  await t.test("pruning keeps the chains verifiable", async (t) => {
    const olderThan = `${Math.ceil((Date.now() - firstPhaseEnded) / 1000) + 1}s`;
    const pruned = await cli("audit", "prune", "--older-than", olderThan, "--json");
    t.equal(pruned.code, 0, pruned.stderr);
    const result = JSON.parse(pruned.stdout) as { deleted: number; cut: unknown[] };
    t.ok(result.deleted > 0, `${result.deleted} events deleted`);
    const after = await verify();
    t.equal(after.code, 0, `verifies from the retention checkpoints: ${after.text}`);
    // What the gateway wrote after the cut (the HTTP subtest's sign-in and listings) is left, under its final checkpoint.
    const { rows } = await db.query<{ id: string }>(`SELECT id::text FROM audit_event WHERE instance = ${q(instance)} ORDER BY seq`);
    t.ok(rows.length >= 2, `${rows.length} rows of the gateway's chain are left after the cut`);
    await db.query(`CREATE TEMP TABLE kept AS SELECT * FROM audit_event WHERE instance = ${q(instance)}`);
    await db.query(`DELETE FROM audit_event WHERE id = ${rows[0]?.id ?? "0"}`);
    t.equal((await verify()).report.findings[0]?.kind, "deleted", "a row deleted after the retention checkpoint is still found");
    await db.query(`DELETE FROM audit_event WHERE instance = ${q(instance)}`);
    t.equal((await verify()).report.findings[0]?.kind, "truncated", "and so is every row after it deleted");
    await db.query("INSERT INTO audit_event SELECT * FROM kept");
    await db.query("DROP TABLE kept");
    t.equal((await verify()).code, 0, "restored, the pruned trail verifies again");
    t.equal((await cli("audit", "prune", "--older-than", "soon")).code, 2, "a bad duration is a usage error");
  });
});
