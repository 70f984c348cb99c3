import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { GerbangConfig } from "../config/schema.ts";

type RedisConfig = GerbangConfig["redis"];

/** One server, a primary found through Sentinel, or a cluster: the commands the gateway uses are the same. */
export type RedisClient = Redis | Cluster;

const hostPort = (address: string): { host: string; port: number } => {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
};

/**
 * A Redis client for the configured deployment, or null without one. Under Sentinel, ioredis asks
 * the Sentinels for the primary, and again after a failover (a READONLY reply from a demoted
 * primary makes it reconnect too). In a cluster it learns the slots from the nodes given and follows
 * MOVED/ASK redirections and failovers. In both, `redis.url` only lends credentials (and, for
 * Sentinel, the database: a cluster has only database 0).
 */
export function createRedis(redis: RedisConfig, options: RedisOptions): RedisClient | null {
  const credentials = redis.url === undefined ? {} : credentialsOf(redis.url);
  if (redis.cluster !== undefined) {
    const { db: _db, ...nodeCredentials } = credentials;
    const { lazyConnect, enableOfflineQueue, retryStrategy, ...perNode } = options;
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...perNode, ...nodeCredentials },
      ...(lazyConnect === undefined ? {} : { lazyConnect }),
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      // The same back-off for the cluster as a whole as for one server; none given: ioredis' own.
      ...(typeof retryStrategy === "function" ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
    };
    return new Cluster(redis.cluster.nodes.map(hostPort), clusterOptions);
  }
  const sentinel = redis.sentinel;
  if (sentinel === undefined) return redis.url === undefined ? null : new Redis(redis.url, options);
  return new Redis({
    ...options,
    ...credentials,
    sentinels: sentinel.addresses.map(hostPort),
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
