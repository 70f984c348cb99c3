import { normalizeIP } from "@fastify/rate-limit";
import type { RateLimitConfig } from "../config/schema.ts";
import type { Principal } from "../auth/principal.ts";
import type { EndpointSpec } from "../policy/schema.ts";
import type { Bucket } from "./rateLimiter.ts";

/**
 * The client address a bucket counts: the socket's, or the one a trusted proxy reported (Fastify's
 * trustProxy walks X-Forwarded-For only past configured proxies; Forwarded and X-Real-IP are never
 * read). IPv4-mapped IPv6 counts as IPv4, and IPv6 is aggregated per prefix, since one host
 * usually holds a whole /64.
 */
export function clientAddress(ip: string, ipv6Prefix: number): string {
  return normalizeIP(ip, ipv6Prefix);
}

/**
 * The bucket of a proxied request: per key (its tier), per user (sessions) or per client address
 * (anonymous). An endpoint with its own `rateLimit` in the policy counts separately, with its limit.
 */
export function apiBucket(config: RateLimitConfig, principal: Principal, ip: string, endpoint?: EndpointSpec): Bucket {
  let subject: string;
  let limit: { max: number; windowMs: number; onRedisDown: "local" | "closed" };
  let reason: string;
  if (principal.key !== undefined) {
    subject = `key:${principal.key.id}`;
    // A tier removed from the configuration falls back to the anonymous limits, never to none.
    limit = config.tiers[principal.key.tier] ?? config.anonymous;
    reason = "KEY_TIER";
  } else if (principal.userId !== null) {
    subject = `user:${principal.userId}`;
    limit = config.session;
    reason = "SESSION";
  } else {
    subject = `ip:${clientAddress(ip, config.ipv6Prefix)}`;
    limit = config.anonymous;
    reason = "ANONYMOUS";
  }
  const override = endpoint?.rateLimit;
  if (override !== undefined) {
    return { reason: "ENDPOINT", key: `ep:${endpoint?.id}:${subject}`, max: override.max, windowMs: override.windowMs, mode: limit.onRedisDown, strict: false };
  }
  return { reason, key: `api:${subject}`, max: limit.max, windowMs: limit.windowMs, mode: limit.onRedisDown, strict: false };
}

/**
 * Refused credentials count against their address in a bucket of their own (with the anonymous
 * limits), so guessing keys or tokens is throttled without touching anonymous traffic.
 */
export function refusedCredentialsBucket(config: RateLimitConfig, ip: string): Bucket {
  const limit = config.anonymous;
  return { reason: "REFUSED_CREDENTIALS", key: `refused:ip:${clientAddress(ip, config.ipv6Prefix)}`, max: limit.max, windowMs: limit.windowMs, mode: limit.onRedisDown, strict: false };
}
