// The Redis client the gateway and CLI build from redis.*: one server by URL, or the Sentinels'
// primary with only the credentials, database and TLS taken from redis.url. Inspected before any
// connection is made (lazyConnect).
import t from "tap";
import { Cluster, Redis } from "ioredis";
import { createRedis } from "../../src/runtime/redisClient.ts";

t.test("none, one server, or Sentinel with the URL's credentials only", async (t) => {
  t.equal(createRedis({ keyPrefix: "g:", commandTimeoutMs: 500 }, { lazyConnect: true }), null, "no Redis configured: none");
  const single = createRedis({ url: "redis://127.0.0.1:6390/2", keyPrefix: "g:", commandTimeoutMs: 500 }, { lazyConnect: true });
  t.match(single?.options, { host: "127.0.0.1", port: 6390, db: 2 });
  single?.disconnect();
  const viaSentinel = createRedis(
    { url: "rediss://gerbang:s%40cret@ignored.example:1/3", sentinel: { addresses: ["10.0.0.1:26379", "sentinel-b:26380"], masterName: "gerbang" }, keyPrefix: "g:", commandTimeoutMs: 500 },
    { lazyConnect: true },
  );
  t.ok(viaSentinel instanceof Redis);
  const options = viaSentinel instanceof Redis ? viaSentinel.options : undefined;
  t.same(options?.sentinels, [{ host: "10.0.0.1", port: 26379 }, { host: "sentinel-b", port: 26380 }], "the Sentinels, host and port");
  t.match(options, { name: "gerbang", role: "master", username: "gerbang", password: "s@cret", db: 3 }, "the primary by name, with the URL's credentials (decoded) and database");
  t.ok(options?.tls !== undefined, "rediss: means TLS");
  t.ok(options?.reconnectOnError?.(new Error("READONLY You can't write against a read only replica.")), "a demoted primary's READONLY makes it reconnect");
  t.notOk(options?.reconnectOnError?.(new Error("ERR unknown command")), "other errors do not");
  viaSentinel?.disconnect();
});

t.test("a cluster: its nodes, the URL's credentials on every node, never a database", async (t) => {
  const cluster = createRedis({ url: "redis://ops:pw@ignored:1/4", cluster: { nodes: ["10.0.0.1:7000", "10.0.0.2:7001"] }, keyPrefix: "g:", commandTimeoutMs: 500 }, { lazyConnect: true, commandTimeout: 500, retryStrategy: (n) => n * 10 });
  t.ok(cluster instanceof Cluster);
  if (!(cluster instanceof Cluster)) return;
  t.match(cluster.options, { lazyConnect: true, redisOptions: { username: "ops", password: "pw", commandTimeout: 500 } });
  t.equal(cluster.options.redisOptions?.db, undefined, "a cluster has database 0 only");
  t.equal(cluster.options.clusterRetryStrategy?.(3), 30, "the back-off given is the cluster's");
  cluster.disconnect();
});
