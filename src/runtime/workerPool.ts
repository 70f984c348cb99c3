// `gerbang serve --workers N`: the primary process forks N gateway workers sharing one port (node:cluster,
// connections handed out round-robin) and serves nothing itself. Each worker is a full instance: its own
// caches, audit chain and instance id, kept coherent with the others through the same Redis pub/sub
// that keeps separate hosts coherent. The primary passes signals on, restarts a worker that dies, and
// gives up (exit 1) when workers keep dying, rather than serve with fewer than asked for ever after.
import cluster, { type Worker } from "node:cluster";

export interface WorkerPoolOptions {
  workers: number;
  log: (msg: string) => void;
  /** server.shutdownGraceMs: how long workers may drain after SIGTERM before they are killed. */
  shutdownGraceMs: number;
}

/** Deaths within CRASH_WINDOW_MS that make the primary give up. */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 1000;

/** A message a worker sends once it listens (src/cli/serveCommand.ts). */
export const WORKER_LISTENING = "gerbang:listening";

/** Runs the primary until the pool is stopped; the exit code. */
export function runWorkerPool(options: WorkerPoolOptions): Promise<number> {
  return new Promise((done) => {
    const slots = new Map<number, Worker>();
    const crashes: number[] = [];
    let stopping = false;
    let exitCode = 0;

    const fork = (slot: number): void => {
      // GERBANG_WORKER numbers the slot: worker 1 alone publishes the admin endpoint and prints the demo text.
      const worker = cluster.fork({ GERBANG_WORKER: String(slot) });
      slots.set(slot, worker);
      worker.on("message", (message: unknown) => {
        if (message === WORKER_LISTENING) options.log(`worker ${slot} (pid ${worker.process.pid ?? "?"}) listening`);
      });
      worker.on("exit", (code, signal) => {
        if (slots.get(slot) === worker) slots.delete(slot);
        if (stopping) {
          if (slots.size === 0) done(exitCode);
          return;
        }
        const now = Date.now();
        crashes.push(now);
        while ((crashes[0] ?? now) < now - CRASH_WINDOW_MS) crashes.shift();
        options.log(`worker ${slot} (pid ${worker.process.pid ?? "?"}) exited (${signal ?? `code ${code}`}); ${crashes.length >= MAX_CRASHES ? "too many deaths in a minute: stopping every worker" : "restarting it"}`);
        if (crashes.length >= MAX_CRASHES) {
          exitCode = 1;
          stop();
          if (slots.size === 0) done(exitCode);
          return;
        }
        setTimeout(() => {
          if (!stopping) fork(slot);
        }, RESTART_DELAY_MS).unref();
      });
    };

    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const worker of slots.values()) worker.process.kill("SIGTERM");
      // A worker that does not drain in time is killed; it has its own grace timer too.
      setTimeout(() => {
        for (const worker of slots.values()) worker.process.kill("SIGKILL");
      }, options.shutdownGraceMs + 2000).unref();
    };

    process.on("SIGTERM", () => {
      options.log("SIGTERM: stopping every worker");
      stop();
    });
    process.on("SIGINT", () => {
      options.log("SIGINT: stopping every worker");
      stop();
    });
    // One worker reloads and records the activation; the others follow it over Redis, as other hosts do.
    process.on("SIGHUP", () => {
      const first = slots.get(1) ?? slots.values().next().value;
      if (first === undefined) options.log("SIGHUP: no worker is running to reload");
      else first.process.kill("SIGHUP");
    });
    for (let slot = 1; slot <= options.workers; slot++) fork(slot);
  });
}
