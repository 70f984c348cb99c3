// Issue 19, PgBouncer in transaction mode (Debian's pgbouncer) between the gateway and PostgreSQL:
// migrations go to database.directUrl (their session-level lock cannot live behind the pooler), and
// everything else works through it — sign-up and sign-in, API keys issued and verified, revocation,
// audit writes, `gerbang audit verify` — with the pooler seeing the traffic.
import t from "tap";
import pg from "pg";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { freePort } from "../helpers/processes.ts";
import { eventually } from "../helpers/eventually.ts";
import { cliOf, databaseOf } from "../helpers/envAccess.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));
if (skip !== false) throw new Error(`PostgreSQL and Redis are required: ${skip}`);

const dir = mkdtempSync(join(tmpdir(), "gerbang-pgbouncer-"));
chmodSync(dir, 0o755);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const port = await freePort();
let bouncer: ChildProcess | null = null;
let bouncerUrl = "";
let output = "";
t.teardown(() => void bouncer?.kill("SIGKILL"));

const env = await startGatewayEnv({
  postgres: true,
  config: { redis: { url: testRedisUrl() } },
  beforeGateways: async (databaseUrl) => {
    const direct = new URL(databaseUrl ?? "");
    const name = direct.pathname.slice(1);
    writeFileSync(join(dir, "users.txt"), `"${direct.username || "postgres"}" ""\n`);
    writeFileSync(
      join(dir, "pgbouncer.ini"),
      [
        "[databases]",
        `${name} = host=${direct.hostname} port=${direct.port || "5432"} dbname=${name}`,
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        "unix_socket_dir =",
        "auth_type = trust",
        `auth_file = ${join(dir, "users.txt")}`,
        "pool_mode = transaction",
        "default_pool_size = 5",
        "max_client_conn = 200",
        "",
      ].join("\n"),
    );
    // PgBouncer refuses to run as root: -u drops to an unprivileged user.
    const asRoot = process.getuid?.() === 0;
    bouncer = spawn("pgbouncer", [...(asRoot ? ["-u", "postgres"] : []), join(dir, "pgbouncer.ini")], { stdio: ["ignore", "pipe", "pipe"] });
    bouncer.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    bouncer.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const viaBouncer = new URL(databaseUrl ?? "");
    viaBouncer.port = String(port);
    bouncerUrl = viaBouncer.toString();
    const ready = await eventually(async () => {
      const client = new pg.Client({ connectionString: bouncerUrl });
      try {
        await client.connect();
        await client.query("SELECT 1");
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    }, 10_000, 100);
    if (!ready) throw new Error(`pgbouncer did not start:\n${output}`);
  },
  databaseConfig: (databaseUrl) => ({ url: bouncerUrl, directUrl: databaseUrl, transactionPooler: true }),
});
t.teardown(() => env.close());
const db = await databaseOf(env);
t.teardown(() => db.end());
const cli = cliOf(env);

t.test("the gateway runs through PgBouncer in transaction mode; migrations went to the direct URL", async (t) => {
  const migrations = Number((await db.query("SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL")).rows[0]?.n);
  const shipped = readdirSync(new URL("../../prisma/migrations", import.meta.url), { withFileTypes: true }).filter((d) => d.isDirectory()).length;
  t.equal(migrations, shipped, "every migration applied");
  const viaPooler = (await db.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = '' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")).rows[0]?.n;
  t.ok(Number(viaPooler) >= 1, "the gateway's pool is PgBouncer's connections to the database");

  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${user.token}` } })).status, 200, "sign-in and a session lookup");
  const created = await fetch(`${env.url}/api/keys`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json", origin: env.url }, body: JSON.stringify({ name: "feed", scopes: ["catalog:read"], expiresIn: "1d" }) });
  t.equal(created.status, 201, "a key issued (Better Auth's transaction)");
  const { key, id } = (await created.json()) as { key: string; id: string };
  t.equal((await fetch(`${env.url}/api/products`, { headers: { "x-api-key": key } })).status, 200, "and verified");
  const revoked = await cli("keys", "revoke", id);
  t.equal(revoked.code, 0, revoked.stderr);
  t.ok(await eventually(async () => (await fetch(`${env.url}/api/products`, { headers: { "x-api-key": key } })).status === 401, 2000), "revoked");
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE path = '/api/products' AND key_id = $1", [id])).rowCount ?? 0) > 0), "audit rows written through the pooler");
  const verify = await cli("audit", "verify");
  t.equal(verify.code, 0, verify.stdout + verify.stderr);
});

t.test("gerbang migrate uses the direct URL too", async (t) => {
  const run = await cli("migrate");
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /up to date/);
});
