import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GerbangError } from "../errors/catalogue.ts";
import type { OnRedisDownMode } from "../config/schema.ts";
import { RateLimitBackendDown, type HitOptions, type RateLimitCounters } from "./rateLimitCounters.ts";

/** One counter a request is counted against: who (key), how much (max per windowMs), and what if Redis is down. */
export interface Bucket {
  /** The 429's reason, e.g. KEY_TIER or SIGN_IN_ACCOUNT. */
  reason: string;
  /** Names the bucket and the caller, e.g. `api:key:<id>`; account identifiers are hashed before they get here. */
  key: string;
  max: number;
  windowMs: number;
  mode: OnRedisDownMode;
  strict: boolean;
  /** Its count is not shown in RateLimit-* headers (an account's counter would tell others of its failed sign-ins). */
  quiet?: boolean;
}

export interface RateLimiter {
  /**
   * Counts the request against each bucket in turn, stopping at the first that refuses. Sets
   * RateLimit-Limit/-Remaining/-Reset of the tightest bucket; throws RATE_LIMITED (429 with
   * Retry-After) or, for a closed bucket while Redis is down, DEPENDENCY_UNAVAILABLE.
   */
  enforce(request: FastifyRequest, reply: FastifyReply, buckets: readonly Bucket[]): Promise<void>;
  /** Counts `weight` more against a bucket after the answer is known (refused sign-ins), in the window counted at `at`. */
  penalize(bucket: Bucket, weight: number, at: number): Promise<void>;
  /** Milliseconds until the bucket resets if this instance knows it is used up, else null (no counting, no Redis round trip). */
  exhaustedFor(bucket: Bucket): number | null;
}

type Limit = ReturnType<FastifyInstance["createRateLimit"]>;
const BUCKET = new WeakMap<FastifyRequest, Bucket>();

/** @fastify/rate-limit drives the counting; its store is RateLimitCounters, one child per Redis-down mode. */
export async function createRateLimiter(app: FastifyInstance, counters: RateLimitCounters): Promise<RateLimiter> {
  await app.register(rateLimit, { global: false, store: countersStore(counters) });
  const bucketOf = (request: FastifyRequest): Bucket => {
    const bucket = BUCKET.get(request);
    if (bucket === undefined) throw new GerbangError("INTERNAL_ERROR");
    return bucket;
  };
  const limits = new Map<string, Limit>();
  const limitFor = (hit: HitOptions): Limit => {
    const id = `${hit.mode}:${hit.strict}`;
    let limit = limits.get(id);
    if (limit === undefined) {
      // `gerbang` reaches the store's child() with the other options: it selects the mode there.
      const options: Parameters<FastifyInstance["createRateLimit"]>[0] & { gerbang: HitOptions } = {
        keyGenerator: (request) => bucketOf(request).key,
        max: (request) => bucketOf(request).max,
        timeWindow: (request) => bucketOf(request).windowMs,
        gerbang: hit,
      };
      limit = app.createRateLimit(options);
      limits.set(id, limit);
    }
    return limit;
  };

  return {
    async enforce(request, reply, buckets) {
      let tightest: { max: number; remaining: number; reset: number } | null = null;
      for (const bucket of buckets) {
        BUCKET.set(request, bucket);
        let result: Awaited<ReturnType<Limit>>;
        try {
          result = await limitFor({ mode: bucket.mode, strict: bucket.strict })(request);
        } catch (error) {
          if (error instanceof RateLimitBackendDown) throw new GerbangError("DEPENDENCY_UNAVAILABLE", { reason: "RATE_LIMIT_BACKEND" });
          throw error;
        }
        if (result.isAllowed || (bucket.quiet === true && !result.isExceeded)) continue;
        if (tightest === null || result.remaining < tightest.remaining || result.isExceeded) {
          tightest = { max: result.max, remaining: result.remaining, reset: result.ttlInSeconds };
        }
        if (result.isExceeded) {
          if (bucket.quiet !== true) setHeaders(reply, tightest);
          throw new GerbangError("RATE_LIMITED", { reason: bucket.reason, headers: { "retry-after": String(Math.max(1, result.ttlInSeconds)) } });
        }
      }
      if (tightest !== null) setHeaders(reply, tightest);
    },
    penalize: (bucket, weight, at) => counters.add(bucket.key, bucket.windowMs, weight, at),
    exhaustedFor: (bucket) => counters.exhaustedFor(bucket.key, bucket.max, bucket.windowMs),
  };
}

function setHeaders(reply: FastifyReply, limit: { max: number; remaining: number; reset: number }): void {
  void reply.header("ratelimit-limit", String(limit.max)).header("ratelimit-remaining", String(limit.remaining)).header("ratelimit-reset", String(limit.reset));
}

function countersStore(counters: RateLimitCounters): FastifyRateLimitStoreCtor {
  class CountersStore implements FastifyRateLimitStore {
    private readonly hit: HitOptions;

    constructor(
      _options: unknown,
      hit: HitOptions = { mode: "local", strict: false },
    ) {
      this.hit = hit;
    }

    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number, max: number): void {
      counters.hit(key, max, timeWindow, this.hit).then(
        (r) => callback(null, { current: r.count, ttl: r.ttlMs }),
        (error: Error) => callback(error),
      );
    }

    child(options: object): FastifyRateLimitStore {
      return new CountersStore(undefined, (options as { gerbang?: HitOptions }).gerbang ?? this.hit);
    }
  }
  return CountersStore;
}
