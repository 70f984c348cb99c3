// Issue 18, personal data: a user downloads everything the gateway holds about them
// (GET /api/account/export), an operator the same with `gerbang users export <email>`. The export
// carries the profile, sessions, API key metadata and the user's audit events — and no secret: the
// test scans it for every token, key and password it used.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";
import { eventually } from "../helpers/eventually.ts";
import { errorOf } from "../helpers/catalogueError.ts";
import pg from "pg";

const pgMissing = await serviceGate("postgres");
if (pgMissing !== false) throw new Error(`PostgreSQL is required: ${pgMissing}`);
const env = await startGatewayEnv({ postgres: true });
t.teardown(() => env.close());
const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
await db.connect();
t.teardown(() => db.end());

interface Export {
  format: string;
  profile: { id: string; email: string; roles: string[] };
  sessions: Array<Record<string, unknown>>;
  apiKeys: Array<Record<string, unknown>>;
  auditEvents: Array<{ action: string; asActor: boolean; allowed: boolean; endpointId: string | null }>;
  auditEventsTruncated: boolean;
}

t.test("a user exports their own data over HTTP, and nothing secret is in it", async (t) => {
  const password = "demo-buyer-password";
  const buyer = await env.signIn("buyer@demo.gerbang.dev", password);
  const created = await fetch(`${env.url}/api/keys`, { method: "POST", headers: { authorization: `Bearer ${buyer.token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "feed", scopes: ["catalog:read"], expiresIn: "1d" }) });
  const { key } = (await created.json()) as { key: string };
  t.equal((await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${buyer.token}` } })).status, 403, "a denied request, to be found in the export");
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE principal_id = $1 AND endpoint_id = 'inventory.list'", [buyer.userId])).rowCount ?? 0) > 0), "(audited)");

  const response = await fetch(`${env.url}/api/account/export`, { headers: { authorization: `Bearer ${buyer.token}` } });
  t.equal(response.status, 200);
  t.match(response.headers.get("content-disposition"), /^attachment; filename="gerbang-export-\d{4}-\d{2}-\d{2}\.json"$/);
  t.equal(response.headers.get("cache-control"), "no-store");
  const text = await response.text();
  const data = JSON.parse(text) as Export;
  t.equal(data.format, "gerbang.user-export/1");
  t.match(data.profile, { id: buyer.userId, email: "buyer@demo.gerbang.dev", roles: ["user"] });
  t.ok(data.sessions.length >= 1, "their sessions");
  t.ok(data.sessions.every((s) => !("token" in s)), "without tokens");
  t.equal(data.apiKeys.length, 1, "their key's metadata");
  t.match(data.apiKeys[0], { name: "feed", scopes: ["catalog:read"], status: "active" });
  t.ok(data.auditEvents.some((e) => e.asActor && !e.allowed && e.endpointId === "inventory.list"), "their denied request");
  t.ok(data.auditEvents.some((e) => e.action === "key.created"), "their key's creation");
  t.equal(data.auditEventsTruncated, false);
  const sessionToken = buyer.token.split(".")[0] ?? buyer.token;
  for (const [what, secret] of [["the bearer token", buyer.token], ["the session token", sessionToken], ["the API key", key], ["the password", password], ["the cookie", buyer.cookie]] as const) {
    t.notOk(text.includes(secret), `no ${what}`);
  }
  t.notMatch(text, /gb_live_[A-Za-z0-9]{20}/, "no key secret of any kind");
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE action = 'user.exported' AND principal_id = $1 AND target = $1", [buyer.userId])).rowCount ?? 0) > 0), "the export is audited");

  const byKey = await fetch(`${env.url}/api/account/export`, { headers: { "x-api-key": key } });
  t.same([byKey.status, errorOf(await byKey.text()).reason], [403, "KEYS_CANNOT_EXPORT"], "not with an API key");
  t.equal((await fetch(`${env.url}/api/account/export`)).status, 401, "not anonymously");
});

t.test("gerbang users export: the same document for an operator", async (t) => {
  const clean = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };
  const run = await runGerbang(["users", "export", "buyer@demo.gerbang.dev", "--config", env.configFile], clean);
  t.equal(run.code, 0, run.stderr);
  const data = JSON.parse(run.stdout) as Export;
  t.equal(data.profile.email, "buyer@demo.gerbang.dev");
  t.ok(data.auditEvents.length > 0);
  const missing = await runGerbang(["users", "export", "nobody@demo.gerbang.dev", "--config", env.configFile], clean);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no user with email nobody@demo\.gerbang\.dev/);
  t.equal(missing.stdout, "", "nothing on stdout: no half document");
});
