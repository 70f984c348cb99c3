// Redis Cluster (issue 19): two gateways on three primaries with a replica each; counters (one key
// each, one slot) are shared and revocations (classic pub/sub, carried to every node) reach both;
// then the primary holding the counters is killed under load and its replica promoted
// (test/helpers/redisFailover.ts states what must hold throughout).
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { redisServerGate, commandGate } from "../helpers/redisServer.ts";
import { startClusterDeployment } from "../helpers/redisCluster.ts";
import { failoverUnderLoad } from "../helpers/redisFailover.ts";

const skip = (await serviceGate("postgres")) || redisServerGate() || commandGate("redis-cli");

t.test("Redis Cluster: shared counters and revocations, and a primary's failover under load", { skip }, async (t) => {
  const cluster = await startClusterDeployment();
  t.teardown(() => cluster.close());
  await failoverUnderLoad(t, {
    redis: { cluster: { nodes: cluster.nodes } },
    fail: async (prefix) => {
      const port = await cluster.primaryHolding(prefix);
      t.ok(port > 0, "the counters live on one primary");
      await cluster.kill(port);
    },
    recovered: () => cluster.healthy(),
  });
});
