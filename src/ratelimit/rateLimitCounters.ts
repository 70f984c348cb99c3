import type { RedisClient as Redis } from "../runtime/redisClient.ts";
import type { OnRedisDownMode } from "../config/schema.ts";

/**
 * Grants up to `want` slots of a window, never beyond `max`: the counter holds slots granted to any
 * instance (plus `unsynced`, requests admitted while Redis was unreachable). What is not granted is
 * given back, so the counter never runs ahead of what was admitted. `floor` is the highest count
 * this instance has seen: a Redis that lost the key (restart without persistence, failover, flush)
 * must not reopen a window the instances already used.
 */
const LEASE_SCRIPT = `
local want = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local unsynced = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < floor then redis.call('SET', KEYS[1], floor, 'PX', ttl) end
local after = redis.call('INCRBY', KEYS[1], want + unsynced)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
local granted = math.min(want, math.max(0, max - (after - want)))
if granted < want then after = redis.call('DECRBY', KEYS[1], want - granted) end
return {granted, after}
`;

/** A lease asks for this share of what is left of a window, so leases shrink to 1 near the limit. */
const LEASE_FRACTION = 0.05;
const MAX_LEASE = 1000;
const PROBE_INTERVAL_MS = 500;
const SWEEP_INTERVAL_MS = 5000;
/** Redis keeps a window a little past its end so a slow clock never reopens it. */
const EXPIRY_SLACK_MS = 5000;

export interface HitOptions {
  mode: OnRedisDownMode;
  /** Strict buckets ask Redis for every request (no leases): exact, for low-volume credential routes. */
  strict: boolean;
}

export interface HitResult {
  allowed: boolean;
  /** Requests counted in this window as far as this instance knows, this one included (max + 1 when refused). */
  count: number;
  /** Milliseconds until the window resets. */
  ttlMs: number;
}

/** Thrown by a `closed` bucket while Redis cannot be asked. */
export class RateLimitBackendDown extends Error {
  constructor() {
    super("rate limit store unavailable");
    this.name = "RateLimitBackendDown";
  }
}

export interface CountersStatus {
  /** none: no Redis configured (every instance counts alone); down: local buckets count alone, closed buckets refuse. */
  redis: "none" | "ok" | "down";
  downSince?: string;
  /** Requests decided without Redis (local fallback or closed refusal) since the process started. */
  decidedWithoutRedis: number;
}

interface Window {
  redisKey: string;
  endsAt: number;
  /** Slots leased from Redis and not used yet. */
  reserve: number;
  /** The window's counter in Redis as last seen (every instance's leases). */
  seen: number;
  /** Admitted while Redis was unreachable; added to Redis when it is back. */
  unsynced: number;
  /** Redis granted nothing: the limit is reached on every instance until the window ends. */
  exhausted: boolean;
  leasing: Promise<void> | null;
}

type LeaseClient = Redis & { gerbangLease(key: string, want: number, max: number, ttlMs: number, unsynced: number, floor: number): Promise<[number, number]> };

export interface RateLimitCountersOptions {
  redis: Redis | null;
  /** Prefix of the Redis keys, e.g. `gerbang:rl:`. */
  keyPrefix: string;
  log: (msg: string) => void;
  maxWindows?: number;
}

/**
 * Fixed-window counters shared through Redis, counted locally between round trips. Each instance
 * leases slots of a window from Redis (a share of what is left, down to one slot near the limit)
 * and admits requests from its lease without a round trip, so the instances together never admit
 * more than the limit; the price is that slots leased by one instance and unused are not available
 * to the others until the window ends (at most LEASE_FRACTION of the remaining budget per instance).
 *
 * When Redis fails, `local` buckets go on counting in this instance alone (each instance then allows
 * up to the limit) and `closed` buckets refuse; a probe notices Redis coming back and the requests
 * admitted meanwhile are added to the shared counters.
 */
export class RateLimitCounters {
  private readonly windows = new Map<string, Window>();
  private readonly maxWindows: number;
  private down = false;
  private downSince = 0;
  private decidedWithoutRedis = 0;
  private probe: NodeJS.Timeout | null = null;
  private probing = false;
  private lastFullSweep = 0;
  private readonly sweep: NodeJS.Timeout;

  private readonly options: RateLimitCountersOptions;

  constructor(options: RateLimitCountersOptions) {
    this.options = options;
    this.maxWindows = options.maxWindows ?? 100000;
    if (options.redis !== null && !("gerbangLease" in options.redis)) {
      options.redis.defineCommand("gerbangLease", { numberOfKeys: 1, lua: LEASE_SCRIPT });
    }
    this.sweep = setInterval(() => this.dropEnded(Date.now()), SWEEP_INTERVAL_MS);
    this.sweep.unref();
  }

  /** Windows held in memory now (at most rateLimit.maxWindows). */
  get size(): number {
    return this.windows.size;
  }

  status(): CountersStatus {
    if (this.options.redis === null) return { redis: "none", decidedWithoutRedis: this.decidedWithoutRedis };
    if (!this.down) return { redis: "ok", decidedWithoutRedis: this.decidedWithoutRedis };
    return { redis: "down", downSince: new Date(this.downSince).toISOString(), decidedWithoutRedis: this.decidedWithoutRedis };
  }

  /** Milliseconds until `key`'s window resets if this instance already knows it is used up, else null; asks nothing, counts nothing. */
  exhaustedFor(key: string, max: number, windowMs: number): number | null {
    const now = Date.now();
    const w = this.windows.get(`${key}:${windowMs}:${Math.floor(now / windowMs)}`);
    return w !== undefined && w.reserve < 1 && (w.exhausted || w.seen + w.unsynced >= max) ? w.endsAt - now : null;
  }

  /** Counts one request against `key`'s current window of `windowMs`, allowing at most `max`. */
  async hit(key: string, max: number, windowMs: number, options: HitOptions): Promise<HitResult> {
    const now = Date.now();
    const w = this.window(key, windowMs, now);
    const ttlMs = w.endsAt - now;
    if (w.exhausted) return { allowed: false, count: max + 1, ttlMs };
    if (w.reserve >= 1) {
      w.reserve -= 1;
      if (!options.strict && w.leasing === null && !this.down && w.reserve < this.leaseSize(w, max) / 2) {
        w.leasing = this.lease(w, max, this.leaseSize(w, max)).finally(() => (w.leasing = null));
      }
      return { allowed: true, count: this.used(w, max), ttlMs };
    }
    if (this.options.redis === null) return this.countAlone(w, max, ttlMs);
    if (this.down) {
      this.decidedWithoutRedis += 1;
      if (options.mode === "closed") throw new RateLimitBackendDown();
      return this.countAlone(w, max, ttlMs);
    }
    // One lease in flight per window: requests arriving meanwhile wait for it instead of asking too.
    while (w.leasing !== null) await w.leasing;
    if (w.reserve < 1 && !w.exhausted && !this.down) {
      w.leasing = this.lease(w, max, options.strict ? 1 : this.leaseSize(w, max)).finally(() => (w.leasing = null));
      await w.leasing;
    }
    if (w.reserve >= 1) {
      w.reserve -= 1;
      return { allowed: true, count: this.used(w, max), ttlMs };
    }
    if (w.exhausted) return { allowed: false, count: max + 1, ttlMs };
    // The lease failed: Redis just went down.
    this.decidedWithoutRedis += 1;
    if (options.mode === "closed") throw new RateLimitBackendDown();
    return this.countAlone(w, max, ttlMs);
  }

  /** Adds `weight` after the fact (a refused sign-in counts more than one) to the window that was current `at`. */
  async add(key: string, windowMs: number, weight: number, at = Date.now()): Promise<void> {
    if (weight <= 0 || Math.floor(at / windowMs) < Math.floor(Date.now() / windowMs)) return;
    const w = this.window(key, windowMs, at);
    w.unsynced += weight;
    if (this.options.redis !== null && !this.down) await this.sync(w, this.options.redis);
  }

  close(): void {
    clearInterval(this.sweep);
    if (this.probe !== null) clearInterval(this.probe);
  }

  private window(key: string, windowMs: number, now: number): Window {
    const index = Math.floor(now / windowMs);
    const id = `${key}:${windowMs}:${index}`;
    let w = this.windows.get(id);
    if (w === undefined) {
      // Bounded: when full, ended windows go first (swept at most once a second), then the oldest
      // window that holds nothing Redis does not know (no unsynced count, not exhausted).
      if (this.windows.size >= this.maxWindows && (now - this.lastFullSweep < 1000 || !this.dropEnded(now))) this.dropOldest();
      w = { redisKey: `${this.options.keyPrefix}${id}`, endsAt: (index + 1) * windowMs, reserve: 0, seen: 0, unsynced: 0, exhausted: false, leasing: null };
      this.windows.set(id, w);
    }
    return w;
  }

  private leaseSize(w: Window, max: number): number {
    return Math.max(1, Math.min(MAX_LEASE, Math.floor((max - w.seen) * LEASE_FRACTION)));
  }

  /** What this instance believes is used of the window: everything leased minus its own unused slots. */
  private used(w: Window, max: number): number {
    return Math.min(max, Math.max(1, w.seen - w.reserve + w.unsynced));
  }

  private countAlone(w: Window, max: number, ttlMs: number): HitResult {
    if (w.seen + w.unsynced + 1 > max) return { allowed: false, count: max + 1, ttlMs };
    w.unsynced += 1;
    return { allowed: true, count: w.seen + w.unsynced, ttlMs };
  }

  private async lease(w: Window, max: number, want: number): Promise<void> {
    const redis = this.options.redis as LeaseClient;
    const unsynced = w.unsynced;
    w.unsynced = 0;
    try {
      const [granted, after] = await redis.gerbangLease(w.redisKey, want, max, w.endsAt - Date.now() + EXPIRY_SLACK_MS, unsynced, w.seen);
      w.seen = Math.max(w.seen, after);
      w.reserve += granted;
      if (granted === 0) w.exhausted = true;
    } catch (error) {
      w.unsynced += unsynced;
      this.markDown(error);
    }
  }

  /** Adds what was counted here alone to the shared counter (a lease of nothing, for its floor and expiry). */
  private async sync(w: Window, redis: Redis): Promise<void> {
    const n = w.unsynced;
    w.unsynced = 0;
    try {
      const [, after] = await (redis as LeaseClient).gerbangLease(w.redisKey, 0, 0, w.endsAt - Date.now() + EXPIRY_SLACK_MS, n, w.seen);
      w.seen = Math.max(w.seen, after);
    } catch (error) {
      w.unsynced += n;
      this.markDown(error);
    }
  }

  private markDown(error: unknown): void {
    if (this.down) return;
    this.down = true;
    this.downSince = Date.now();
    const reason = error instanceof Error ? error.message.split("\n")[0] : "error";
    this.options.log(`rate limit: Redis unreachable (${reason}); buckets with onRedisDown=local count in this instance alone, onRedisDown=closed buckets answer 503`);
    this.probe = setInterval(() => void this.tryRecover(), PROBE_INTERVAL_MS);
    this.probe.unref();
  }

  private async tryRecover(): Promise<void> {
    const redis = this.options.redis;
    // One probe at a time: a late answer to an old probe must not end an outage a newer failure began.
    if (redis === null || this.probing) return;
    this.probing = true;
    try {
      await redis.ping();
    } catch {
      return;
    } finally {
      this.probing = false;
    }
    if (!this.down) return;
    if (this.probe !== null) clearInterval(this.probe);
    this.probe = null;
    this.down = false;
    this.options.log(`rate limit: Redis reachable again after ${Date.now() - this.downSince} ms; counters are shared again`);
    // What was admitted alone is added to the shared counters, so the limit holds for the rest of the window.
    const now = Date.now();
    for (const w of this.windows.values()) {
      if (w.unsynced > 0 && w.endsAt > now) await this.sync(w, redis);
    }
  }

  private dropEnded(now: number): boolean {
    this.lastFullSweep = now;
    let dropped = false;
    for (const [id, w] of this.windows) {
      if (w.endsAt <= now && w.leasing === null) {
        this.windows.delete(id);
        dropped = true;
      }
    }
    return dropped;
  }

  private dropOldest(): void {
    let scanned = 0;
    for (const [id, w] of this.windows) {
      if (w.unsynced === 0 && !w.exhausted && w.leasing === null) {
        this.windows.delete(id);
        return;
      }
      if (++scanned >= 100) break;
    }
    // Everything near the front carries state: forget the very oldest rather than grow without bound.
    const first = this.windows.keys().next();
    if (first.done !== true) this.windows.delete(first.value);
  }
}
