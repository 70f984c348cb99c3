import { Redis, type RedisOptions } from "ioredis";
import type { GerbangConfig } from "../config/schema.ts";

type RedisConfig = GerbangConfig["redis"];

/**
 * A Redis client for the configured deployment, or null without one. Under Sentinel, ioredis asks
 * the Sentinels for the primary, and again after a failover (a READONLY reply from a demoted
 * primary makes it reconnect too); `redis.url` then only lends its credentials and database.
 */
export function createRedis(redis: RedisConfig, options: RedisOptions): Redis | null {
  const sentinel = redis.sentinel;
  if (sentinel === undefined) return redis.url === undefined ? null : new Redis(redis.url, options);
  const credentials = redis.url === undefined ? {} : credentialsOf(redis.url);
  return new Redis({
    ...options,
    ...credentials,
    sentinels: sentinel.addresses.map((address) => {
      const at = address.lastIndexOf(":");
      return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
    }),
    name: sentinel.masterName,
    role: "master",
    // A demoted primary answers writes with READONLY: reconnect, through the Sentinels, to the new one.
    reconnectOnError: (error) => error.message.startsWith("READONLY"),
  });
}

function credentialsOf(url: string): Pick<RedisOptions, "username" | "password" | "db" | "tls"> {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.slice(1));
  return {
    ...(parsed.username === "" ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === "" ? {} : { password: decodeURIComponent(parsed.password) }),
    ...(Number.isInteger(db) && parsed.pathname.length > 1 ? { db } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
  };
}
