import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./processes.ts";

export interface OwnedRedis {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: clients see the connection drop, as in a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** One question to the Redis (server or Sentinel) on a local port; null when it cannot be asked. */
export async function askRedis<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T | null> {
  const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    return await fn(probe);
  } catch {
    return null;
  } finally {
    probe.disconnect();
  }
}

/** A redis-server process of the test's own on a free port, so a test can take Redis away and bring it back. */
export async function startOwnedRedis(): Promise<OwnedRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "gerbang-redis-"));
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if ((await askRedis(port, (r) => r.ping())) === "PONG") return;
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once("exit", r));
    running.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `false` when redis-server can be started here, else a skip reason (an error in CI, as serviceGate). */
export function redisServerGate(): false | string {
  return commandGate("redis-server");
}

/** Skip reason when a service binary is not on PATH; in CI (or with GERBANG_REQUIRE_SERVICES=1) it must be. */
export function commandGate(command: string): false | string {
  const run = spawnSync(command, ["--version"], { stdio: "ignore" });
  if (run.error === undefined && run.status === 0) return false;
  if (process.env.CI === "true" || process.env.GERBANG_REQUIRE_SERVICES === "1") throw new Error(`${command} is required in this environment but is not on PATH`);
  return `needs ${command} on PATH`;
}
