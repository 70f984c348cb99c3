import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { freePort } from "./processes.ts";
import { askRedis, commandGate } from "./redisServer.ts";

export interface SentinelDeployment {
  masterName: string;
  /** The Sentinels' `host:port`, for redis.sentinel.addresses. */
  sentinels: string[];
  primaryPort: number;
  replicaPort: number;
  /** SIGKILL of the current primary (a crash: no goodbye to anyone). */
  killPrimary(): Promise<void>;
  /** The port the Sentinels name as primary now. */
  currentPrimaryPort(): Promise<number>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function untilAnswers(port: number, ask: (r: Redis) => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; (await askRedis(port, ask)) !== true; await sleep(100)) {
    if (Date.now() > deadline) throw new Error(`${what} (port ${port}) not ready in time`);
  }
}

/** A primary, its replica and three Sentinels (quorum 2, down after 1 s), all the test's own processes. */
export async function startSentinelDeployment(): Promise<SentinelDeployment> {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-sentinel-"));
  const masterName = "gerbang";
  const [primaryPort, replicaPort, ...sentinelPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]) as [number, number, number, number, number];
  const children = new Map<number, ChildProcess>();
  const server = (port: number, extra: string[]): void => {
    children.set(port, spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extra], { stdio: "ignore" }));
  };
  server(primaryPort, []);
  server(replicaPort, ["--replicaof", "127.0.0.1", String(primaryPort)]);
  await untilAnswers(replicaPort, async (r) => (await r.info("replication")).includes("master_link_status:up"), "the replica");
  for (const port of sentinelPorts) {
    const file = join(dir, `sentinel-${port}.conf`);
    writeFileSync(file, [`port ${port}`, "bind 127.0.0.1", `dir ${dir}`, `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} 2`, `sentinel down-after-milliseconds ${masterName} 1000`, `sentinel failover-timeout ${masterName} 5000`, `sentinel parallel-syncs ${masterName} 1`, ""].join("\n"));
    children.set(port, spawn("redis-sentinel", [file], { stdio: "ignore" }));
  }
  const primaryNamedBy = async (port: number): Promise<number> => {
    const addr = await askRedis(port, (r) => r.call("SENTINEL", "get-master-addr-by-name", masterName) as Promise<[string, string] | null>);
    return addr === null ? 0 : Number(addr[1]);
  };
  // Every Sentinel knows the primary, its replica and the other Sentinels before the test may fail it over.
  for (const port of sentinelPorts) {
    await untilAnswers(port, async (r) => {
      const info = (await r.call("SENTINEL", "master", masterName)) as string[];
      const field = (name: string): number => Number(info[info.indexOf(name) + 1] ?? 0);
      return field("num-slaves") >= 1 && field("num-other-sentinels") >= 2;
    }, "a sentinel");
  }
  let current = primaryPort;
  return {
    masterName,
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
    primaryPort,
    replicaPort,
    killPrimary: async () => {
      const child = children.get(current);
      if (child === undefined || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
    currentPrimaryPort: async () => {
      current = await primaryNamedBy(sentinelPorts[0] as number);
      return current;
    },
    close: async () => {
      for (const child of children.values()) if (child.exitCode === null) child.kill("SIGKILL");
      await sleep(100);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Skip reason when redis-sentinel is not installed (.ci/run installs it). */
export const sentinelGate = (): false | string => commandGate("redis-sentinel");
