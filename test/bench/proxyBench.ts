// `npm run bench`: in one run on loopback, the same minimal upstream behind (1) a bare Fastify +
// @fastify/reply-from proxy and (2) the gateway's API-key path (PostgreSQL, Redis, audit on, a tier
// whose limit is far above the load). Prints req/s and p99 of each and the ratio gateway/bare.
// Rounds alternate between the two so that machine noise falls on both alike.
import autocannon from "autocannon";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { stringify } from "yaml";
import { freePort, runGerbang, startGerbang } from "../helpers/processes.ts";
import { testPgUrl, testRedisUrl } from "../helpers/services.ts";

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
/** e.g. BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles that process alone. */
const nodeArgsOf = (variable: string): string[] => (process.env[variable] ?? "").split(" ").filter((a) => a !== "");

async function startScript(file: string, args: string[], nodeArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", here(file), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code}`)));
  });
  return child;
}

interface Measured {
  rps: number;
  p99: number;
  errors: number;
  /** CPU µs per request of the proxy process, and of PostgreSQL (all its processes) meanwhile. */
  cpuUs: number;
  pgCpuUs: number;
}

/** utime + stime of the processes, in seconds (Linux /proc; 0 elsewhere). */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    } catch {
      // gone meanwhile (a backend that closed)
    }
  }
  return ticks / 100;
}
const postgresPids = (): number[] =>
  readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/comm`, "utf8").trim() === "postgres";
      } catch {
        return false;
      }
    })
    .map(Number);

async function measure(url: string, headers: Record<string, string>, seconds: number, pid?: number): Promise<Measured> {
  const pgPids = postgresPids();
  const before = { own: cpuSeconds(pid === undefined ? [] : [pid]), pg: cpuSeconds(pgPids) };
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, headers });
  const served = Math.max(1, result.requests.total);
  const own = cpuSeconds(pid === undefined ? [] : [pid]) - before.own;
  const pgCpu = cpuSeconds(pgPids) - before.pg;
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx, cpuUs: (own * 1e6) / served, pgCpuUs: (pgCpu * 1e6) / served };
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
try {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-bench-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const [upstreamPort, barePort, gatewayPort] = [await freePort(), await freePort(), await freePort()];
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const upstream = await startScript("./minimalUpstream.ts", [String(upstreamPort)]);
  cleanups.push(() => upstream.kill());
  const bare = await startScript("./bareProxy.ts", [String(barePort), upstreamUrl], nodeArgsOf("BENCH_BARE_NODE_ARGS"));
  cleanups.push(() => bare.kill());

  const admin = new pg.Client({ connectionString: testPgUrl() });
  await admin.connect();
  const database = `gerbang_bench_${Date.now()}`;
  await admin.query(`CREATE DATABASE "${database}"`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });
  const dbUrl = new URL(testPgUrl());
  dbUrl.pathname = `/${database}`;
  const configFile = join(dir, "gerbang.yaml");
  writeFileSync(
    configFile,
    stringify({
      server: { host: "127.0.0.1", port: gatewayPort },
      database: { url: dbUrl.toString() },
      redis: { url: process.env.BENCH_REDIS_URL ?? testRedisUrl(), keyPrefix: `gerbang-bench-${Date.now()}:` },
      dataDir: join(dir, "data"),
      logLevel: process.env.BENCH_LOG_LEVEL ?? "info",
      upstreams: [{ name: "marketplace", prefix: "/api", url: upstreamUrl, timeoutMs: 10000 }],
      rateLimit: { tiers: { "partner-basic": { max: 60 }, bench: { max: 1_000_000_000, windowMs: 3_600_000 } } },
      apiKeys: { selfServiceTier: "partner-basic" },
      // e.g. BENCH_GATEWAY_CONFIG='{"audit":{"enabled":false}}' to see what one part costs.
      ...(JSON.parse(process.env.BENCH_GATEWAY_CONFIG ?? "{}") as object),
    }),
  );
  const env = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };
  const gateway = await startGerbang(["serve", "--config", configFile], { env, nodeArgs: nodeArgsOf("BENCH_GATEWAY_NODE_ARGS"), readyUrl: `http://127.0.0.1:${gatewayPort}/readyz` });
  cleanups.push(() => gateway.stop());
  const owner = await runGerbang(["users", "create", "--email", "bench@partner.example", "--password", "bench-partner-password", "--role", "partner", "--config", configFile], env);
  if (owner.code !== 0) throw new Error(owner.stderr);
  const issued = await runGerbang(["keys", "create", "--owner", "bench@partner.example", "--name", "bench", "--tier", "bench", "--scopes", "catalog:read", "--config", configFile], env);
  if (issued.code !== 0) throw new Error(issued.stderr);
  const key = issued.stdout.trim().split("\n").at(-1) ?? "";

  const bareUrl = `http://127.0.0.1:${barePort}/api/products`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}/api/products`;
  const keyHeaders = { "x-api-key": key };
  const check = await fetch(gatewayUrl, { headers: keyHeaders });
  if (check.status !== 200) throw new Error(`the gateway answered the bench key with ${check.status}: ${await check.text()}`);

  process.stdout.write(`bench: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s each, alternating; warming up\n`);
  await measure(bareUrl, {}, 2);
  await measure(gatewayUrl, keyHeaders, 2);
  const runs: { bare: Measured[]; gateway: Measured[] } = { bare: [], gateway: [] };
  for (let round = 0; round < ROUNDS; round++) {
    runs.bare.push(await measure(bareUrl, {}, SECONDS, bare.pid));
    runs.gateway.push(await measure(gatewayUrl, keyHeaders, SECONDS, gateway.child.pid));
  }
  const median = (values: number[]): number => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? 0;
  const summary = (m: Measured[]): { rps: number; p99: number; errors: number; cpuUs: number; pgCpuUs: number } => ({
    rps: median(m.map((r) => r.rps)),
    p99: median(m.map((r) => r.p99)),
    errors: m.reduce((s, r) => s + r.errors, 0),
    cpuUs: median(m.map((r) => r.cpuUs)),
    pgCpuUs: median(m.map((r) => r.pgCpuUs)),
  });
  const b = summary(runs.bare);
  const g = summary(runs.gateway);
  const row = (name: string, s: { rps: number; p99: number; errors: number; cpuUs: number; pgCpuUs: number }): string =>
    `${name.padEnd(26)} ${s.rps.toFixed(0).padStart(8)} req/s   p99 ${String(s.p99).padStart(4)} ms   errors ${s.errors}   CPU/request ${s.cpuUs.toFixed(0).padStart(4)} µs (PostgreSQL ${s.pgCpuUs.toFixed(0)} µs)`;
  process.stdout.write(`${row("bare reply-from proxy", b)}\n${row("gateway, API-key path", g)}\n`);
  process.stdout.write(`ratio gateway/bare: ${(g.rps / b.rps).toFixed(3)} req/s (median of ${ROUNDS} rounds; per round: ${runs.gateway.map((r, i) => (r.rps / (runs.bare[i]?.rps ?? 1)).toFixed(3)).join(", ")})\n`);
  if (g.errors > 0 || b.errors > 0) process.exitCode = 1;
} finally {
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
}
