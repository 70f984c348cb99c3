// The process as an operator meets it: refusing bad configuration and policies, readiness.
import t from "tap";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { freePort, runGerbang, startGerbang } from "../helpers/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "gerbang-startup-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const clean: NodeJS.ProcessEnv = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };

function configFile(name: string, config: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, stringify({ dataDir: join(dir, "data"), database: { embeddedDir: join(dir, `pglite-${name}`) }, logLevel: "warn", ...config }));
  return file;
}
const upstreams = [{ name: "marketplace", prefix: "/api", url: "http://127.0.0.1:9" }];

t.test("refuses to start without a valid active policy version", async (t) => {
  const run = await runGerbang(["serve", "--config", configFile("nopolicy.yaml", { upstreams, policy: { version: "1999-01-01" } })], clean);
  t.equal(run.code, 1);
  t.match(run.stderr, /1999-01-01/);
  t.match(run.stderr, /manifest\.yaml: file not found/);
  t.notMatch(run.stderr, /\n\s+at /, "no stack trace");
});

t.test("refuses invalid configuration with the field path", async (t) => {
  const run = await runGerbang(["serve", "--config", configFile("badport.yaml", { upstreams, server: { port: "eighty" } })], clean);
  t.equal(run.code, 1);
  t.match(run.stderr, /config \/server\/port: /);
  const missing = await runGerbang(["serve", "--config", join(dir, "nope.yaml")], clean);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot read/);
  const usage = await runGerbang(["serve", "--bogus"], clean);
  t.equal(usage.code, 2);
});

t.test("policy validate", async (t) => {
  const ok = await runGerbang(["policy", "validate"], clean);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /2026-11-26: valid, \d+\/\d+ policy tests pass/);
  const broken = join(dir, "broken", "v1");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(broken, "roles"), { recursive: true });
  writeFileSync(join(broken, "manifest.yaml"), 'version: v1\nsummary: x\ncreated: "2026-11-26T00:00:00Z"\n');
  writeFileSync(join(broken, "roles", "user.yaml"), "role: user\nrules:\n  - id: r\n    action: read\n    subject: X\n    conditions: { ownerId: '${principal.nope}' }\n");
  const bad = await runGerbang(["policy", "validate", broken], clean);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /roles\/user\.yaml:6 \/rules\/0\/conditions\/ownerId: unknown principal attribute nope/);
});

const redisSkip = await serviceGate("redis");
t.test("readiness reports Redis when it is configured", { skip: redisSkip }, async (t) => {
  const port = await freePort();
  const up = await startGerbang(["serve", "--config", configFile("redis.yaml", { upstreams, server: { port } })], {
    env: { ...clean, REDIS_URL: testRedisUrl() },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });
  t.teardown(() => up.stop());
  const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { checks: Record<string, string> };
  t.same(ready.checks, { database: "ok", redis: "ok", rateLimit: "ok", policy: "ok", policyActivation: "ok", policyReload: "ok", upstreams: "ok" });
  t.equal(await up.stop(), 0);

  const deadRedis = await freePort();
  const port2 = await freePort();
  const down = await startGerbang(["serve", "--config", configFile("redis-down.yaml", { upstreams, server: { port: port2 } })], {
    env: { ...clean, REDIS_URL: `redis://127.0.0.1:${deadRedis}` },
    readyUrl: `http://127.0.0.1:${port2}/healthz`,
  });
  t.teardown(() => down.stop());
  // Redis down degrades the gateway (rate limits count per instance) instead of taking it out of service.
  const response = await fetch(`http://127.0.0.1:${port2}/readyz`);
  t.equal(response.status, 200);
  const body = (await response.json()) as { status: string; checks: Record<string, string> };
  t.equal(body.status, "degraded");
  t.equal(body.checks.redis, "failing");
  t.equal(body.checks.database, "ok");
});
