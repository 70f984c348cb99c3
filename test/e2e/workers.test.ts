// Issue 19, `gerbang serve --workers N`: two worker processes share one port, each a full instance
// (own audit chain); a revocation reaches every worker within a second under keep-alive load; a
// worker that dies is replaced while the others serve; SIGTERM to the primary drains them all; and
// configurations several workers cannot serve coherently are refused with the reason.
import t from "tap";
import pg from "pg";
import { readFileSync, writeFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";
import { eventually } from "../helpers/eventually.ts";
import { bearer, refusedWithin, underLoad } from "../helpers/fleetUnderLoad.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));
if (skip !== false) throw new Error(`PostgreSQL and Redis are required: ${skip}`);
const env = await startGatewayEnv({ postgres: true, serveArgs: ["--workers", "2"], config: { redis: { url: testRedisUrl() }, auth: { sessionCacheTtlMs: 60000 } } });
t.teardown(() => env.close());
const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
await db.connect();
t.teardown(() => db.end());
const clean: NodeJS.ProcessEnv = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };

const workerPids = async (): Promise<number[]> => (await db.query<{ pid: number }>("SELECT pid FROM gateway_instance WHERE seen_at > now() - interval '30 seconds' ORDER BY started_at")).rows.map((r) => r.pid);

t.test("two workers serve one port, each its own instance", async (t) => {
  t.ok(await eventually(async () => (await workerPids()).length === 2, 30_000), "two instances registered");
  const primary = env.gateway.child.pid;
  t.notOk((await workerPids()).includes(primary ?? -1), "the primary serves nothing itself");
  for (let i = 0; i < 200; i++) await (await fetch(`${env.url}/api/products`, { headers: { connection: "close" } })).arrayBuffer();
  t.ok(
    await eventually(async () => Number((await db.query("SELECT count(DISTINCT instance) AS n FROM audit_event WHERE path = '/api/products'")).rows[0]?.n) === 2),
    "requests were answered by both (two audit chains)",
  );
});

t.test("a revocation reaches every worker within a second, under load", async (t) => {
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  // Several loops over keep-alive connections: the connections land on both workers.
  const load = await underLoad([env.url, env.url], "/api/orders", bearer(user), 200, async () => {
    const run = await runGerbang(["users", "revoke-sessions", "user@demo.gerbang.dev", "--config", env.configFile], clean);
    t.equal(run.code, 0, run.stderr);
  });
  t.ok(load.before > 0);
  t.equal(load.lateAllowed, 0, "no request allowed a second after the revocation, on any worker");
  t.ok(refusedWithin(load, 1000), JSON.stringify(load.refusedAfterMs));
});

t.test("a worker that dies is replaced; the pool keeps serving", async (t) => {
  const [victim] = await workerPids();
  t.ok(victim !== undefined);
  process.kill(victim ?? 0, "SIGKILL");
  let failures = 0;
  const started = Date.now();
  while (Date.now() - started < 3000) {
    // Bounded: a connection the primary handed to the dying worker may never be answered (node:cluster).
    const response = await fetch(`${env.url}/api/products`, { headers: { connection: "close" }, signal: AbortSignal.timeout(2000) }).catch(() => null);
    if (response?.status !== 200) failures += 1;
    await response?.arrayBuffer().catch(() => null);
  }
  t.ok(failures <= 3, `the other worker served meanwhile (${failures} failed)`);
  t.ok(await eventually(async () => (await db.query("SELECT 1 FROM gateway_instance WHERE seen_at > now() - interval '10 seconds' AND pid <> $1 AND started_at > now() - interval '30 seconds'", [victim])).rowCount === 1, 30_000), "a new worker registered");
  t.match(env.gateway.output(), /worker \d \(pid \d+\) exited \(SIGKILL\); restarting it/);
});

t.test("SIGTERM to the primary drains every worker and exits 0", async (t) => {
  const pids = await workerPids();
  t.equal(pids.length >= 2, true);
  const code = await env.gateway.stop();
  t.equal(code, 0);
  for (const pid of pids) {
    t.ok(await eventually(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 15_000), `worker ${pid} is gone`);
  }
});

t.test("refused: several workers on the embedded database, or without Redis", async (t) => {
  const embedded = await runGerbang(["serve", "--workers", "2"], { ...clean, GERBANG_DATA_DIR: "" });
  t.equal(embedded.code, 2);
  t.match(embedded.stderr, /--workers needs database\.url/);
  const noRedis = `${env.configFile}.no-redis.yaml`;
  const config = parse(readFileSync(env.configFile, "utf8")) as { redis?: { url?: string } };
  delete config.redis?.url;
  writeFileSync(noRedis, stringify(config));
  const withoutRedis = await runGerbang(["serve", "--workers", "2", "--config", noRedis], clean);
  t.equal(withoutRedis.code, 2);
  t.match(withoutRedis.stderr, /--workers needs redis\.url/);
  const bad = await runGerbang(["serve", "--workers", "0"], clean);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--workers takes a number from 1 to 64/);
});
