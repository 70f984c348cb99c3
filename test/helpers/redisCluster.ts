import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./processes.ts";
import { askRedis } from "./redisServer.ts";

export interface ClusterDeployment {
  /** Every node's `host:port`, for redis.cluster.nodes. */
  nodes: string[];
  /** The port of the primary holding keys that start with `prefix` (0 when none does yet). */
  primaryHolding(prefix: string): Promise<number>;
  /** SIGKILL of one node (a crash). */
  kill(port: number): Promise<void>;
  /** Every live node says the cluster is ok, and every killed node is marked failed (its replica took over). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Three primaries and a replica each (`redis-server --cluster-enabled yes`, node timeout 1 s), the test's own processes. */
export async function startClusterDeployment(): Promise<ClusterDeployment> {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-cluster-"));
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const children = new Map<number, ChildProcess>();
  for (const port of ports) {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir);
    children.set(port, spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", join(nodeDir, "nodes.conf"), "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no", "--dir", nodeDir], { stdio: "ignore" }));
  }
  for (const port of ports) {
    for (const deadline = Date.now() + 10_000; (await askRedis(port, (r) => r.ping())) !== "PONG"; await sleep(50)) if (Date.now() > deadline) throw new Error(`cluster node ${port} did not start`);
  }
  const created = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"], { encoding: "utf8" });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  const killed = new Set<number>();
  /** Every live node says the cluster is ok and has marked each killed node as failed (its replica promoted). */
  const healthy = async (): Promise<boolean> => {
    const live = ports.filter((p) => !killed.has(p));
    for (const port of live) {
      const info = await askRedis(port, (r) => r.call("CLUSTER", "INFO") as Promise<string>);
      if (info === null || !info.includes("cluster_state:ok")) return false;
      const nodes = await askRedis(port, (r) => r.call("CLUSTER", "NODES") as Promise<string>);
      for (const dead of killed) {
        const line = nodes?.split("\n").find((l) => l.includes(`127.0.0.1:${dead}@`)) ?? "";
        if (!/\bfail\b(?!\?)/.test(line)) return false;
      }
    }
    return true;
  };
  for (const deadline = Date.now() + 20_000; !(await healthy()); await sleep(100)) if (Date.now() > deadline) throw new Error("the cluster did not reach cluster_state:ok");
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`),
    primaryHolding: async (prefix) => {
      for (const port of ports.filter((p) => !killed.has(p))) {
        const found = await askRedis(port, async (r) => {
          const role = ((await r.call("ROLE")) as unknown[])[0];
          if (role !== "master") return false;
          const [, keys] = (await r.scan("0", "MATCH", `${prefix}*`, "COUNT", 10_000)) as [string, string[]];
          return keys.length > 0;
        });
        if (found === true) return port;
      }
      return 0;
    },
    kill: async (port) => {
      const child = children.get(port);
      killed.add(port);
      if (child === undefined || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
    healthy,
    close: async () => {
      for (const child of children.values()) if (child.exitCode === null) child.kill("SIGKILL");
      await sleep(100);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
