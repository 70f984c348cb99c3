// `npm run bench`: in one run on loopback, the same minimal upstream behind two references — a bare
// Fastify + @fastify/reply-from proxy and a bare node:http + undici Pool.stream one — and behind the
// gateway on each of its paths (anonymous, session cookie, bearer, API key, resolver with a warm
// cache, a request denied by policy). Rounds interleave every target so that machine noise falls on
// all alike; each figure is the median of the rounds, each ratio the median of per-round ratios.
// Writes docs/benchmark-latest.json and docs/benchmark-latest.md (the table the README quotes). No test asserts a time.
import autocannon from "autocannon";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { stringify } from "yaml";
import { freePort, runGerbang, startGerbang } from "../helpers/processes.ts";
import { testPgUrl, testRedisUrl } from "../helpers/services.ts";

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** e.g. BENCH_PATHS=apiKey,denied to measure only those (the references always run). */
const ONLY = (process.env.BENCH_PATHS ?? "").split(",").filter((p) => p !== "");
/** BENCH_SOAK_SECONDS=600: instead of the comparison, the gateway's paths in turn (10 s each) for that long, RSS sampled every 10 s. */
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 0);
/** `npm run bench -- --workers 2` (or BENCH_WORKERS=2): each gateway path also through `serve --workers N`, with the scaling factor from 1 worker. */
const workersArg = process.argv.indexOf("--workers");
const WORKERS = Number((workersArg >= 0 ? process.argv[workersArg + 1] : undefined) ?? process.env.BENCH_WORKERS ?? 1);
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 64) throw new Error(`--workers takes a number from 1 to 64, got ${String(WORKERS)}`);
const OUT = process.env.BENCH_OUT ?? fileURLToPath(new URL("../../docs/", import.meta.url));
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
/** e.g. BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles that process alone. */
const nodeArgsOf = (variable: string): string[] => (process.env[variable] ?? "").split(" ").filter((a) => a !== "");

async function startScript(file: string, args: string[], nodeArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, here(file), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code}`)));
  });
  return child;
}

/** utime + stime of each process, in seconds (Linux /proc; none elsewhere). */
function cpuSeconds(pids: readonly number[]): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      seconds.set(pid, (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100);
    } catch {
      // gone meanwhile (a backend that closed)
    }
  }
  return seconds;
}
/** CPU seconds spent between two samples by the processes present in both (a backend that exited took its count along). */
function spent(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, s] of after) {
    const b = before.get(pid);
    if (b !== undefined) total += s - b;
  }
  return total;
}
const pidsNamed = (name: string): number[] =>
  readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/comm`, "utf8").trim() === name;
      } catch {
        return false;
      }
    })
    .map(Number);

interface Target {
  name: string;
  kind: "reference" | "gateway";
  url: string;
  headers: Record<string, string>;
  /** The status class every answer must have: 2 (allowed) or 4 (denied). */
  expect: 2 | 4;
  pid: number;
  /** For a pool of workers: every worker's pid at the moment (their CPU is the proxy's). */
  pids?: () => number[];
  /** For a pool: the one-worker target it is compared with. */
  oneWorker?: string;
}

/** The children of a process (Linux /proc): a pool's workers. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter((p) => p !== "").map(Number);
  } catch {
    return [];
  }
}

/** One round of one target: CPU in µs per request of each process involved. */
interface Measured {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUs: { proxy: number; upstream: number; postgres: number; redis: number; loadGenerator: number };
}

async function measure(target: Target, seconds: number, upstreamPid: number): Promise<Measured> {
  const [pgPids, redisPids] = [pidsNamed("postgres"), pidsNamed("redis-server")];
  const proxyPids = target.pids?.() ?? [target.pid];
  const sample = (): Array<Map<number, number>> => [cpuSeconds(proxyPids), cpuSeconds([upstreamPid]), cpuSeconds(pgPids), cpuSeconds(redisPids)];
  const before = sample();
  const own = process.cpuUsage();
  const result = await autocannon({ url: target.url, connections: CONNECTIONS, duration: seconds, headers: target.headers });
  const ownUs = process.cpuUsage(own);
  const after = sample();
  const served = Math.max(1, result.requests.total);
  const perRequest = (i: number): number => (spent(before[i] ?? new Map(), after[i] ?? new Map()) * 1e6) / served;
  const classes = result as unknown as Record<"1xx" | "2xx" | "3xx" | "4xx" | "5xx", number>;
  const unexpected = result.requests.total - (target.expect === 2 ? classes["2xx"] : classes["4xx"]);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + Math.max(0, unexpected),
    cpuUs: { proxy: perRequest(0), upstream: perRequest(1), postgres: perRequest(2), redis: perRequest(3), loadGenerator: (ownUs.user + ownUs.system) / served },
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** Resident set size of a process in MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:")) ?? "";
  return Number(/(\d+)/.exec(line)?.[1] ?? 0) / 1024;
}

/** The memory soak: every path in turn at the bench's load; a flat RSS means every cache and queue is bounded. */
async function soak(paths: Target[], gatewayPid: number, upstreamPid: number): Promise<void> {
  const samples: Array<{ s: number; rssMiB: number }> = [];
  const started = Date.now();
  let errors = 0;
  let requests = 0;
  process.stdout.write(`soak: ${SOAK_SECONDS} s, ${CONNECTIONS} connections, paths in turn (10 s each), gateway RSS every 10 s\n`);
  for (let i = 0; Date.now() - started < SOAK_SECONDS * 1000; i++) {
    const target = paths[i % paths.length];
    if (target === undefined) break;
    const m = await measure(target, 10, upstreamPid);
    errors += m.errors;
    requests += Math.round(m.rps * 10);
    const sample = { s: Math.round((Date.now() - started) / 1000), rssMiB: Math.round(rssMiB(gatewayPid) * 10) / 10 };
    samples.push(sample);
    process.stdout.write(`  ${String(sample.s).padStart(4)} s  ${target.name.padEnd(10)} ${String(Math.round(m.rps)).padStart(6)} req/s  RSS ${sample.rssMiB} MiB\n`);
  }
  const rss = samples.map((x) => x.rssMiB);
  const summary = { date: new Date().toISOString(), seconds: SOAK_SECONDS, connections: CONNECTIONS, requests, errors, rssMiB: { first: rss[0] ?? 0, last: rss.at(-1) ?? 0, max: Math.max(...rss) }, samples };
  process.stdout.write(`soak: ${requests} requests, ${errors} errors; RSS first ${summary.rssMiB.first} MiB, last ${summary.rssMiB.last} MiB, max ${summary.rssMiB.max} MiB\n`);
  if (process.env.BENCH_OUT !== "none") writeFileSync(join(OUT, "soak-latest.json"), `${JSON.stringify(summary, null, 2)}\n`);
  if (errors > 0) process.exitCode = 1;
}

/** The comparison: every target in interleaved rounds; prints the table and writes the result files. */
async function compare(targets: Target[], upstreamPid: number, logLevel: string): Promise<void> {
  process.stdout.write(`bench: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per target, interleaved; warming up\n`);
  // A Node process idle for a while runs slower at first (V8's memory reducer): every target is warmed.
  for (const t of targets) await measure(t, 2, upstreamPid);
  const runs = new Map<string, Measured[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of targets) runs.get(t.name)?.push(await measure(t, SECONDS, upstreamPid));
  }

  const of = (name: string): Measured[] => runs.get(name) ?? [];
  const ratioTo = (name: string, reference: string): number => median(of(name).map((m, i) => m.rps / (of(reference)[i]?.rps ?? Infinity)));
  const results = targets.map((t) => {
    const m = of(t.name);
    const cpu = (k: keyof Measured["cpuUs"]): number => Math.round(median(m.map((r) => r.cpuUs[k])));
    return {
      name: t.name,
      kind: t.kind,
      rps: Math.round(median(m.map((r) => r.rps))),
      p50Ms: median(m.map((r) => r.p50)),
      p99Ms: median(m.map((r) => r.p99)),
      errors: m.reduce((s, r) => s + r.errors, 0),
      vsReplyFrom: Number(ratioTo(t.name, "bare reply-from proxy").toFixed(3)),
      vsUndici: Number(ratioTo(t.name, "bare undici proxy").toFixed(3)),
      cpuUsPerRequest: { proxy: cpu("proxy"), upstream: cpu("upstream"), postgres: cpu("postgres"), redis: cpu("redis"), loadGenerator: cpu("loadGenerator") },
    };
  });
  // 1 → N workers, per path: the throughput factor (median of per-round ratios) and CPU per request.
  const scaling = targets
    .filter((t) => t.oneWorker !== undefined)
    .map((t) => {
      const one = results.find((r) => r.name === t.oneWorker);
      const pool = results.find((r) => r.name === t.name);
      return { path: t.oneWorker ?? "", workers: WORKERS, factor: Number(ratioTo(t.name, t.oneWorker ?? "").toFixed(3)), cpuUsPerRequest: { oneWorker: one?.cpuUsPerRequest.proxy ?? 0, pool: pool?.cpuUsPerRequest.proxy ?? 0 } };
    });
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const report = {
    date: new Date().toISOString(),
    machine,
    settings: { connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, workers: WORKERS, gatewayNodeArgs: nodeArgsOf("BENCH_GATEWAY_NODE_ARGS"), logLevel: logLevel, gatewayConfigOverride: process.env.BENCH_GATEWAY_CONFIG ?? null },
    results,
    scaling,
  };
  const md = [
    `Measured ${report.date.slice(0, 10)} on ${machine}; ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s per target (medians), audit on, access log at \`${logLevel}\`.`,
    "Load generator, upstream, proxies, PostgreSQL and Redis share the machine's cores.",
    "",
    "| target | req/s | × reply-from | × undici | p50 ms | p99 ms | CPU µs/req proxy | upstream | PostgreSQL | Redis | load gen. | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...results.map((r) => `| ${r.name} | ${r.rps} | ${r.vsReplyFrom.toFixed(2)} | ${r.vsUndici.toFixed(2)} | ${r.p50Ms} | ${r.p99Ms} | ${r.cpuUsPerRequest.proxy} | ${r.cpuUsPerRequest.upstream} | ${r.cpuUsPerRequest.postgres} | ${r.cpuUsPerRequest.redis} | ${r.cpuUsPerRequest.loadGenerator} | ${r.errors} |`),
    ...(scaling.length === 0
      ? []
      : ["", `Scaling 1 → ${WORKERS} workers (\`serve --workers ${WORKERS}\`, same run): ${scaling.map((x) => `${x.path} ×${x.factor.toFixed(2)} (CPU µs/req ${x.cpuUsPerRequest.oneWorker} → ${x.cpuUsPerRequest.pool})`).join(", ")}. Two cores carry the load generator, the upstream, PostgreSQL and Redis too.`]),
    "",
  ].join("\n");
  process.stdout.write(`\n${md}\n`);
  if (process.env.BENCH_OUT !== "none") {
    writeFileSync(join(OUT, "benchmark-latest.json"), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(OUT, "benchmark-latest.md"), `# Latest benchmark\n\nWritten by \`npm run bench\` (test/bench/proxyBench.ts); what it measures: [Benchmark](benchmark.md).\n\n${md}`);
    process.stdout.write(`written: ${join(OUT, "benchmark-latest.json")}, ${join(OUT, "benchmark-latest.md")}\n`);
  }
  if (results.some((r) => r.errors > 0)) process.exitCode = 1;
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
try {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-bench-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const [upstreamPort, barePort, undiciPort, gatewayPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const upstream = await startScript("./minimalUpstream.ts", [String(upstreamPort)]);
  cleanups.push(() => upstream.kill());
  const bare = await startScript("./bareProxy.ts", [String(barePort), upstreamUrl], nodeArgsOf("BENCH_BARE_NODE_ARGS"));
  cleanups.push(() => bare.kill());
  const bareUndici = await startScript("./bareUndiciProxy.ts", [String(undiciPort), upstreamUrl]);
  cleanups.push(() => bareUndici.kill());

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
  const generous = { max: 1_000_000_000, windowMs: 3_600_000 };
  const gatewayConfig = {
    server: { host: "127.0.0.1", port: gatewayPort },
    database: { url: dbUrl.toString() },
    redis: { url: process.env.BENCH_REDIS_URL ?? testRedisUrl(), keyPrefix: `gerbang-bench-${Date.now()}:` },
    dataDir: join(dir, "data"),
    logLevel: process.env.BENCH_LOG_LEVEL ?? "info",
    upstreams: [{ name: "marketplace", prefix: "/api", url: upstreamUrl, timeoutMs: 10000 }],
    // Limits far above the load: the counting is measured, not a refusal.
    rateLimit: { tiers: { "partner-basic": { max: 60 }, bench: generous }, session: generous, anonymous: generous },
    resolver: { cacheTtlMs: 60000 },
    apiKeys: { selfServiceTier: "partner-basic" },
    // e.g. BENCH_GATEWAY_CONFIG='{"audit":{"enabled":false}}' to see what one part costs.
    ...(JSON.parse(process.env.BENCH_GATEWAY_CONFIG ?? "{}") as object),
  };
  writeFileSync(configFile, stringify(gatewayConfig));
  const env = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };
  const gatewayBase = `http://127.0.0.1:${gatewayPort}`;
  const gateway = await startGerbang(["serve", "--config", configFile], { env, nodeArgs: nodeArgsOf("BENCH_GATEWAY_NODE_ARGS"), readyUrl: `${gatewayBase}/readyz`, keepOutput: 1_000_000 });
  cleanups.push(() => gateway.stop());
  const gerbang = async (...args: string[]): Promise<string> => {
    const run = await runGerbang([...args, "--config", configFile], env);
    if (run.code !== 0) throw new Error(`gerbang ${args.slice(0, 2).join(" ")}: ${run.stderr}`);
    return run.stdout;
  };
  await gerbang("users", "create", "--email", "bench@partner.example", "--password", "bench-partner-password", "--role", "partner");
  const key = (await gerbang("keys", "create", "--owner", "bench@partner.example", "--name", "bench", "--tier", "bench", "--scopes", "catalog:read")).trim().split("\n").at(-1) ?? "";
  await gerbang("users", "create", "--email", "bench@buyer.example", "--password", "bench-buyer-password", "--role", "user");
  const signIn = await fetch(`${gatewayBase}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: gatewayBase },
    body: JSON.stringify({ email: "bench@buyer.example", password: "bench-buyer-password" }),
  });
  if (signIn.status !== 200) throw new Error(`the bench user's sign-in failed with ${signIn.status}: ${await signIn.text()}`);
  const token = signIn.headers.get("set-auth-token") ?? "";
  const cookie = (signIn.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
  const userId = ((await signIn.json()) as { user: { id: string } }).user.id;

  const gatewayPid = gateway.child.pid ?? 0;
  const references: Target[] = [
    { name: "bare reply-from proxy", kind: "reference", url: `http://127.0.0.1:${barePort}/api/products`, headers: {}, expect: 2, pid: bare.pid ?? 0 },
    { name: "bare undici proxy", kind: "reference", url: `http://127.0.0.1:${undiciPort}/api/products`, headers: {}, expect: 2, pid: bareUndici.pid ?? 0 },
  ];
  const paths: Target[] = [
    { name: "anonymous", kind: "gateway", url: `${gatewayBase}/api/products`, headers: {}, expect: 2, pid: gatewayPid },
    { name: "cookie", kind: "gateway", url: `${gatewayBase}/api/products`, headers: { cookie }, expect: 2, pid: gatewayPid },
    { name: "bearer", kind: "gateway", url: `${gatewayBase}/api/products`, headers: { authorization: `Bearer ${token}` }, expect: 2, pid: gatewayPid },
    { name: "apiKey", kind: "gateway", url: `${gatewayBase}/api/products`, headers: { "x-api-key": key }, expect: 2, pid: gatewayPid },
    { name: "resolver", kind: "gateway", url: `${gatewayBase}/api/orders/${encodeURIComponent(userId)}`, headers: { authorization: `Bearer ${token}` }, expect: 2, pid: gatewayPid },
    // The key's scope does not cover inventory: a 403 decided by policy.
    { name: "denied", kind: "gateway", url: `${gatewayBase}/api/inventory`, headers: { "x-api-key": key }, expect: 4, pid: gatewayPid },
  ].filter((p) => ONLY.length === 0 || ONLY.includes(p.name)) as Target[];
  const pools: Target[] = [];
  if (WORKERS > 1) {
    const poolPort = await freePort();
    const poolConfig = join(dir, "gerbang-pool.yaml");
    writeFileSync(poolConfig, stringify({ ...gatewayConfig, server: { ...gatewayConfig.server, port: poolPort } }));
    const pool = await startGerbang(["serve", "--workers", String(WORKERS), "--config", poolConfig], { env, nodeArgs: nodeArgsOf("BENCH_GATEWAY_NODE_ARGS"), readyUrl: `http://127.0.0.1:${poolPort}/readyz`, keepOutput: 1_000_000 });
    cleanups.push(() => pool.stop());
    const primary = pool.child.pid ?? 0;
    // Ready when every worker listens (the first one answers /readyz before the others are up).
    for (let waited = 0; childrenOf(primary).length < WORKERS || (pool.output().match(/worker \d+ \(pid \d+\) listening/g) ?? []).length < WORKERS; waited += 200) {
      if (waited > 60_000) throw new Error(`the pool's workers did not all start:\n${pool.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const p of paths) pools.push({ ...p, name: `${p.name} (${WORKERS} workers)`, url: p.url.replace(gatewayBase, `http://127.0.0.1:${poolPort}`), pid: primary, pids: () => childrenOf(primary), oneWorker: p.name });
  }
  const targets = [...references, ...paths, ...pools];
  for (const t of targets) {
    const check = await fetch(t.url, { headers: t.headers });
    if (Math.floor(check.status / 100) !== t.expect) throw new Error(`${t.name}: ${t.url} answered ${check.status}: ${await check.text()}`);
  }

  if (SOAK_SECONDS > 0) await soak(paths, gatewayPid, upstream.pid ?? 0);
  else await compare(targets, upstream.pid ?? 0, gatewayConfig.logLevel);
} finally {
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
}
