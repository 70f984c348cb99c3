// Issue 19, the fleet profile: deploy/haproxy/haproxy.cfg (what `docker compose --profile fleet`
// runs) in front of two real gateways. Requests reach both; a client's own X-Forwarded-For is dropped
// while HAProxy's is believed (server.trustProxy), so audit rows name the address HAProxy saw; an
// instance that drains (SIGTERM: /readyz 503) leaves the rotation and the other serves on.
import t from "tap";
import pg from "pg";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { freePort } from "../helpers/processes.ts";
import { eventually } from "../helpers/eventually.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));
if (skip !== false) throw new Error(`PostgreSQL and Redis are required: ${skip}`);
const env = await startGatewayEnv({ postgres: true, instances: 2, serverConfig: { trustProxy: ["127.0.0.1"], shutdownGraceMs: 4000 }, config: { redis: { url: testRedisUrl() } } });
t.teardown(() => env.close());
const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
await db.connect();
t.teardown(() => db.end());

// The shipped configuration, with the compose service names replaced by the test's gateways and a
// faster health check (the shipped one checks every 2 s).
const dir = mkdtempSync(join(tmpdir(), "gerbang-haproxy-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const port = await freePort();
const [a, b] = env.urls.map((u) => new URL(u).host) as [string, string];
const shipped = readFileSync(new URL("../../deploy/haproxy/haproxy.cfg", import.meta.url), "utf8");
const config = shipped.replace("gateway-a:8080", a).replace("gateway-b:8080", b).replace("bind :8080", `bind 127.0.0.1:${port}`).replace("inter 2s fall 2 rise 2", "inter 200ms fall 2 rise 2").replace("log stdout format raw local0", "");
if (config.includes("gateway-a:8080") || config.includes("gateway-b:8080") || !config.includes(`bind 127.0.0.1:${port}`)) throw new Error("deploy/haproxy/haproxy.cfg changed shape: update this test's substitutions");
writeFileSync(join(dir, "haproxy.cfg"), config);
const haproxy: ChildProcess = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "ignore", "pipe"] });
t.teardown(() => void haproxy.kill("SIGKILL"));
const lb = `http://127.0.0.1:${port}`;
if (!(await eventually(async () => (await fetch(`${lb}/readyz`).catch(() => null))?.status === 200, 20_000))) throw new Error("HAProxy did not start serving");

t.test("requests through HAProxy reach both gateways; a client's X-Forwarded-For is not believed", async (t) => {
  const spoofed = "203.0.113.66";
  for (let i = 0; i < 40; i++) await (await fetch(`${lb}/api/products`, { headers: { "x-forwarded-for": spoofed, connection: "close" } })).arrayBuffer();
  t.ok(await eventually(async () => Number((await db.query("SELECT count(DISTINCT instance) AS n FROM audit_event WHERE path = '/api/products'")).rows[0]?.n) === 2), "both instances answered");
  const addresses = (await db.query<{ client_ip: string }>("SELECT DISTINCT client_ip FROM audit_event WHERE path = '/api/products'")).rows.map((r) => r.client_ip);
  t.same(addresses, ["127.0.0.1"], "the address HAProxy saw, never the client's claim");
});

t.test("a draining instance leaves the rotation; the other serves on", async (t) => {
  const stopping = env.gateways[1]?.stop();
  let failed = 0;
  let served = 0;
  const started = Date.now();
  while (Date.now() - started < 4000) {
    const response = await fetch(`${lb}/api/products`).catch(() => null);
    if (response?.status === 200) served += 1;
    else failed += 1;
    await response?.arrayBuffer();
  }
  await stopping;
  t.ok(served > 50, `${served} served while B drained and stopped`);
  t.ok(failed <= 2, `${failed} failed (HAProxy retries a request that never reached an instance)`);
  const after = await fetch(`${lb}/api/products`);
  t.equal(after.status, 200, "all traffic on A");
});
