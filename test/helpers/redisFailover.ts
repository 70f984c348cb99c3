import type { Test } from "tap";
import { startGatewayEnv } from "./gatewayEnv.ts";
import { runGerbang } from "./processes.ts";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HOUR = 3_600_000;
const LIMIT = 200;
const generous = { max: 1_000_000, windowMs: HOUR };

export interface FailoverTarget {
  /** The gateway's redis config besides keyPrefix (sentinel or cluster). */
  redis: Record<string, unknown>;
  /** Crashes the Redis node that matters (the primary; in a cluster, the one holding the counters under `prefix`). */
  fail(prefix: string): Promise<void>;
  /** Whether the deployment has recovered (a replica promoted); checked until true. */
  recovered(): Promise<boolean>;
}

/**
 * Two gateways on a replicated Redis deployment: readiness, shared counters and a CLI revocation
 * reaching both; then the node that matters is killed under load, and the limit must keep its
 * documented bound (at most instances × limit over the outage), no 5xx may appear, both instances
 * must follow the promotion, and a revocation afterwards must reach both within a second.
 */
export async function failoverUnderLoad(t: Test, target: FailoverTarget): Promise<void> {
  const prefix = `gerbang-failover-${Date.now()}:`;
  const env = await startGatewayEnv({
    postgres: true,
    instances: 2,
    config: {
      redis: { ...target.redis, keyPrefix: prefix },
      rateLimit: { tiers: { "partner-basic": { max: LIMIT, windowMs: HOUR }, "partner-pro": generous }, session: generous, anonymous: generous },
    },
  });
  t.teardown(() => env.close());
  const [a, b] = env.urls as [string, string];
  const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  t.equal((await cli("users", "create", "--email", "ops@acme.example", "--password", "acme-partner-password", "--role", "partner")).code, 0);
  const newKey = async (name: string, tier: string): Promise<{ key: string; id: string }> => {
    const made = await cli("keys", "create", "--json", "--owner", "ops@acme.example", "--name", name, "--tier", tier, "--scopes", "catalog:read");
    return { key: made.stdout.trim().split("\n").at(-1) ?? "", id: (JSON.parse(made.stdout.trim().split("\n")[0] ?? "{}") as { id: string }).id };
  };
  const status = async (base: string, key: string): Promise<number> => {
    const response = await fetch(`${base}/api/products`, { headers: { "x-api-key": key } }).catch(() => null);
    await response?.arrayBuffer();
    return response?.status ?? 0;
  };
  const readiness = async (base: string): Promise<string> => ((await (await fetch(`${base}/readyz`)).json()) as { checks?: { redis?: string } }).checks?.redis ?? "none";
  const refusedWithinASecond = async (base: string, key: string): Promise<boolean> => {
    for (const deadline = Date.now() + 1000; Date.now() < deadline; await sleep(50)) if ((await status(base, key)) === 401) return true;
    return false;
  };

  await t.test("before: ready, counters shared, revocations everywhere", async (t) => {
    t.same([await readiness(a), await readiness(b)], ["ok", "ok"], "both instances reach Redis");
    const probe = await newKey("probe", "partner-pro");
    t.same([await status(a, probe.key), await status(b, probe.key)], [200, 200], "the key works (and is cached) on both");
    t.equal((await cli("keys", "revoke", probe.id)).code, 0);
    t.same([await refusedWithinASecond(a, probe.key), await refusedWithinASecond(b, probe.key)], [true, true], "revoked from the CLI: refused on both within a second");
  });

  await t.test("the node killed under load: promotion followed, the bound kept, revocations arrive", async (t) => {
    // Windows are aligned to the clock: the whole phase (well under a minute) must stay inside one.
    const left = HOUR - (Date.now() % HOUR);
    if (left < 120_000) await sleep(left + 200);
    const load = await newKey("load", "partner-basic");
    const doomed = await newKey("doomed", "partner-pro");
    t.same([await status(a, doomed.key), await status(b, doomed.key)], [200, 200]);
    const counts = { admitted: 0, refused: 0, other: new Map<number, number>() };
    let running = true;
    const clients = Array.from({ length: 6 }, async (_, i) => {
      while (running) {
        const s = await status(i % 2 === 0 ? a : b, load.key);
        if (s === 200) counts.admitted += 1;
        else if (s === 429) counts.refused += 1;
        else counts.other.set(s, (counts.other.get(s) ?? 0) + 1);
        await sleep(20);
      }
    });
    // Short of spending the limit: most of it is spent across the failover.
    await sleep(300);
    const before = counts.admitted;
    t.ok(before > 0 && before <= LIMIT, `before the failover: ${before} admitted, within the limit`);
    await target.fail(`${prefix}rl:`);
    let recovered = false;
    for (const deadline = Date.now() + 30_000; !recovered && Date.now() < deadline; await sleep(200)) recovered = await target.recovered().catch(() => false);
    t.ok(recovered, "a replica was promoted");
    // Both instances reconnect by themselves.
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && ((await readiness(a)) !== "ok" || (await readiness(b)) !== "ok"); ) await sleep(200);
    t.same([await readiness(a), await readiness(b)], ["ok", "ok"], "both instances report Redis up again");
    t.equal((await cli("keys", "revoke", doomed.id)).code, 0);
    t.same([await refusedWithinASecond(a, doomed.key), await refusedWithinASecond(b, doomed.key)], [true, true], "a revocation after the failover reaches both within a second");
    // Keep spending until both refuse: counting is shared again.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !((await status(a, load.key)) === 429 && (await status(b, load.key)) === 429); ) await sleep(100);
    running = false;
    await Promise.all(clients);
    t.same([await status(a, load.key), await status(b, load.key)], [429, 429], "the limit is spent on both instances");
    // docs/api-keys-and-rate-limits.md: while Redis is away each instance counts alone (at most instances × limit in all).
    t.ok(counts.admitted <= 2 * LIMIT, `at most instances × limit admitted over the whole failover (${counts.admitted} of ${LIMIT}, ${counts.refused} refused)`);
    t.same([...counts.other.keys()], [], "no other status: no 5xx while the node was away");
  });
}
