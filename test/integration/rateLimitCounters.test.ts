// RateLimitCounters against a Redis server the test owns: two counter sets (as two gateway
// instances would hold) share one limit exactly, count locally between round trips, and follow
// their documented Redis-down modes, recovering by themselves.
import t from "tap";
import { Redis } from "ioredis";
import { RateLimitBackendDown, RateLimitCounters } from "../../src/ratelimit/rateLimitCounters.ts";
import { redisServerGate, startOwnedRedis, type OwnedRedis } from "../helpers/redisServer.ts";

const skip = redisServerGate();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const LOCAL = { mode: "local", strict: false } as const;
const CLOSED = { mode: "closed", strict: true } as const;

t.test("rate limit counters on a shared Redis", { skip }, async (t) => {
  const server: OwnedRedis = await startOwnedRedis();
  t.teardown(() => server.close());
  const clients: Redis[] = [];
  const logs: string[] = [];
  const counters = (): RateLimitCounters => {
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 500, retryStrategy: (n) => Math.min(n * 50, 200) });
    redis.on("error", () => undefined);
    clients.push(redis);
    const c = new RateLimitCounters({ redis, keyPrefix: "t:rl:", log: (m) => logs.push(m) });
    t.teardown(() => c.close());
    return c;
  };
  t.teardown(() => clients.forEach((c) => c.disconnect()));
  const a = counters();
  const b = counters();
  await Promise.all(clients.map((c) => (c.status === "ready" ? undefined : new Promise((r) => c.once("ready", r)))));
  const admin = new Redis(server.url, { retryStrategy: (n) => Math.min(n * 50, 200), maxRetriesPerRequest: 1 });
  admin.on("error", () => undefined);
  t.teardown(() => admin.disconnect());

  await t.test("two instances hitting one key concurrently admit exactly the limit", async (t) => {
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? a : b).hit("k:shared", 150, 60000, LOCAL)));
    t.equal(results.filter((r) => r.allowed).length, 150, "never more than the limit");
    t.ok(results.filter((r) => !r.allowed).every((r) => r.count === 151 && r.ttlMs > 0 && r.ttlMs <= 60000), "refusals say exceeded, with the reset time");
    // Every leased slot is used once both instances have drained their leases.
    const more = await Promise.all([a.hit("k:shared", 150, 60000, LOCAL), b.hit("k:shared", 150, 60000, LOCAL)]);
    t.same(more.map((r) => r.allowed), [false, false]);
  });

  await t.test("far below the limit, requests are counted without a round trip each", async (t) => {
    const before = await evalCalls(admin);
    for (let i = 0; i < 2000; i++) await a.hit("k:busy", 1_000_000, 60000, LOCAL);
    const calls = (await evalCalls(admin)) - before;
    t.ok(calls <= 10, `2000 requests took ${calls} lease round trips`);
    const shared = Number(await admin.get(`t:rl:k:busy:60000:${Math.floor(Date.now() / 60000)}`));
    t.ok(shared >= 2000 && shared <= 2000 + 1000, `Redis holds what was admitted plus one unused lease (${shared})`);
  });

  await t.test("strict buckets ask Redis every time and never lease ahead", async (t) => {
    for (let i = 0; i < 3; i++) t.ok((await a.hit("k:strict", 3, 60000, CLOSED)).allowed);
    t.notOk((await b.hit("k:strict", 3, 60000, CLOSED)).allowed, "the other instance sees the same count");
    const key = `t:rl:k:strict:60000:${Math.floor(Date.now() / 60000)}`;
    t.equal(await admin.get(key), "3", "refusals are not counted beyond the limit");
    await a.add("k:weighted", 60000, 4);
    await a.add("k:weighted", 60000, 50, Date.now() - 60000);
    t.equal(a.exhaustedFor("k:weighted", 5, 60000), null, "weight for an ended window is not added to the current one");
    t.equal((await b.hit("k:weighted", 5, 60000, CLOSED)).allowed, true, "4 + 1 is within 5");
    t.equal((await a.hit("k:weighted", 5, 60000, CLOSED)).allowed, false, "the added weight counts on every instance");
    t.ok((a.exhaustedFor("k:weighted", 5, 60000) ?? 0) > 0, "and the instance knows without asking again");
  });

  await t.test("Redis down: local buckets count alone, closed ones refuse, and both recover", async (t) => {
    logs.length = 0;
    // The counts below are of one 60 s window: a start near its end would see the next one's (empty) count.
    const intoWindow = Date.now() % 60000;
    if (intoWindow > 45000) await sleep(60000 - intoWindow + 50);
    const window = Math.floor(Date.now() / 60000);
    await a.hit("k:outage", 1000, 60000, LOCAL);
    await server.stop();
    // Until a command fails the counters cannot know; the first one tells them.
    let closedError: unknown = null;
    try {
      await a.hit("k:closed", 10, 60000, CLOSED);
    } catch (error) {
      closedError = error;
    }
    t.type(closedError, RateLimitBackendDown, "a closed bucket refuses with the backend error");
    t.equal(a.status().redis, "down");
    t.match(logs.join("\n"), /Redis unreachable/);
    let allowed = 0;
    for (let i = 0; i < 1500; i++) if ((await a.hit("k:outage", 1000, 60000, LOCAL)).allowed) allowed++;
    t.equal(allowed, 999, "the local fallback still enforces the limit in this instance");
    await t.rejects(a.hit("k:closed", 10, 60000, CLOSED), RateLimitBackendDown, "closed buckets keep refusing without waiting for Redis");

    await server.start();
    const started = Date.now();
    while (a.status().redis !== "ok" && Date.now() - started < 5000) await sleep(50);
    t.equal(a.status().redis, "ok", `recovered by itself in ${Date.now() - started} ms`);
    t.match(logs.join("\n"), /Redis reachable again/);
    t.ok((await a.hit("k:closed", 10, 60000, CLOSED)).allowed, "closed buckets work again");
    // The restarted Redis is empty (it keeps nothing on disk): the count this instance had seen (its
    // lease of 50) comes back as a floor, plus the 950 requests admitted without a lease.
    const shared = Number(await admin.get(`t:rl:k:outage:60000:${window}`));
    t.equal(shared, 1000, "a Redis that lost the window does not reopen it");
    t.ok(a.status().decidedWithoutRedis > 0, "decisions made without Redis are counted");
  });
});

t.test("without Redis every bucket counts in the instance", async (t) => {
  const c = new RateLimitCounters({ redis: null, keyPrefix: "x:", log: () => undefined });
  t.teardown(() => c.close());
  const results = [];
  for (let i = 0; i < 5; i++) results.push((await c.hit("k", 3, 60000, CLOSED)).allowed);
  t.same(results, [true, true, true, false, false]);
  t.equal(c.status().redis, "none");
});

async function evalCalls(redis: Redis): Promise<number> {
  const info = await redis.info("commandstats");
  let total = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) total += Number(m[1]);
  return total;
}
