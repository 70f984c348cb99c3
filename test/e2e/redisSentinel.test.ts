// Redis Sentinel (issue 19): two gateways find the primary through three Sentinels; counters are
// shared and revocations reach both; then the primary is killed under load and the Sentinels promote
// the replica (test/helpers/redisFailover.ts states what must hold throughout).
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { sentinelGate, startSentinelDeployment } from "../helpers/redisSentinel.ts";
import { redisServerGate } from "../helpers/redisServer.ts";
import { failoverUnderLoad } from "../helpers/redisFailover.ts";

const skip = (await serviceGate("postgres")) || redisServerGate() || sentinelGate();

t.test("Redis Sentinel: shared counters and revocations, and a failover under load", { skip }, async (t) => {
  const sentinel = await startSentinelDeployment();
  t.teardown(() => sentinel.close());
  await failoverUnderLoad(t, {
    redis: { sentinel: { addresses: sentinel.sentinels, masterName: sentinel.masterName } },
    fail: () => sentinel.killPrimary(),
    recovered: async () => (await sentinel.currentPrimaryPort()) === sentinel.replicaPort,
  });
});
