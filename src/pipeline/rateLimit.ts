import type { FastifyReply, FastifyRequest } from "fastify";
import type { RateLimitConfig } from "../config/schema.ts";
import { GerbangError } from "../errors/catalogue.ts";
import { apiBucket, refusedCredentialsBucket } from "../ratelimit/apiBucket.ts";
import type { RateLimiter } from "../ratelimit/rateLimiter.ts";

export interface RateLimitStageOptions {
  limiter: RateLimiter;
  config: RateLimitConfig;
}

/**
 * Stage: rate limit, after authenticate (the bucket is the caller's) and the endpoint match (an
 * endpoint may have its own limit), before the precheck, so denied requests count too.
 */
export function createRateLimitStage(options: RateLimitStageOptions): {
  limit: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Runs instead when authenticate refused the credentials: they count against the client address. */
  refused: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Before authenticate: an address known to be out of refused credentials gets no more lookups (no guessing oracle). */
  guessing: (request: FastifyRequest) => void;
} {
  const { limiter, config } = options;
  return {
    limit: async (request, reply) => {
      const { principal, endpoint } = request.gerbang;
      if (principal === undefined) throw new GerbangError("INTERNAL_ERROR");
      await limiter.enforce(request, reply, [apiBucket(config, principal, request.ip, endpoint?.endpoint.spec)]);
    },
    refused: (request, reply) => limiter.enforce(request, reply, [refusedCredentialsBucket(config, request.ip)]),
    guessing: (request) => {
      const { headers } = request;
      if (headers["x-api-key"] === undefined && headers.authorization === undefined && headers.cookie === undefined) return;
      const bucket = refusedCredentialsBucket(config, request.ip);
      const resetMs = limiter.exhaustedFor(bucket);
      if (resetMs !== null) throw new GerbangError("RATE_LIMITED", { reason: bucket.reason, headers: { "retry-after": String(Math.max(1, Math.ceil(resetMs / 1000))) } });
    },
  };
}
