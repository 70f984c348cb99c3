// Two gateway processes on one PostgreSQL and Redis with a one-minute session cache, the CLI on their
// config, and a load loop: the setup of the tests where a change must reach every instance in a second.
import type pg from "pg";
import { serviceGate, testRedisUrl } from "./services.ts";
import { startGatewayEnv, type GatewayEnv, type SignedIn } from "./gatewayEnv.ts";
import { cliOf, databaseOf } from "./envAccess.ts";

export interface Fleet {
  env: GatewayEnv;
  a: string;
  b: string;
  /** The fleet's database, for what a test must see directly. */
  db: pg.Client;
  cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

export async function startFleet(): Promise<Fleet> {
  const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));
  if (skip !== false) throw new Error(`PostgreSQL and Redis are required: ${skip}`);
  const env = await startGatewayEnv({ postgres: true, instances: 2, config: { redis: { url: testRedisUrl() }, auth: { sessionCacheTtlMs: 60000 } } });
  const [a, b] = env.urls as [string, string];
  const db = await databaseOf(env);
  return {
    env,
    a,
    b,
    db,
    cli: cliOf(env),
    close: async () => {
      await db.end();
      await env.close();
    },
  };
}

export const bearer = (s: SignedIn): Record<string, string> => ({ authorization: `Bearer ${s.token}` });

export interface LoadOutcome {
  /** Requests answered `allowed` that started before the change returned. */
  before: number;
  /** Requests answered `allowed` that started a second or more after the change returned. */
  lateAllowed: number;
  /** Per base URL, ms from the change's return to the first other answer (null: none came). */
  refusedAfterMs: Record<string, number | null>;
}

/**
 * Requests as fast as they are answered, two loops per instance over keep-alive connections, while
 * `change` runs; then how long after it returned the first refusal came on each instance, and whether
 * a request that started a second after it was still allowed.
 */
export async function underLoad(bases: readonly string[], path: string, headers: Record<string, string>, allowed: number, change: () => Promise<void>): Promise<LoadOutcome> {
  let stop = false;
  let doneAt = Infinity;
  let before = 0;
  let lateAllowed = 0;
  const refusedAt = new Map<string, number>();
  const loop = async (base: string): Promise<void> => {
    while (!stop) {
      const startedAt = Date.now();
      const response = await fetch(`${base}${path}`, { headers });
      await response.arrayBuffer();
      if (response.status === allowed && startedAt < doneAt) before += 1;
      if (response.status !== allowed && !refusedAt.has(base)) refusedAt.set(base, Date.now());
      if (response.status === allowed && startedAt >= doneAt + 1000) lateAllowed += 1;
    }
  };
  const loops = [...bases, ...bases].map(loop);
  await new Promise((r) => setTimeout(r, 300));
  await change();
  doneAt = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  stop = true;
  await Promise.all(loops);
  const refusedAfterMs = Object.fromEntries(bases.map((base) => [base, refusedAt.has(base) ? Math.max(0, (refusedAt.get(base) ?? 0) - doneAt) : null]));
  return { before, lateAllowed, refusedAfterMs };
}

/** Whether every instance refused within `ms` of the change. */
export const refusedWithin = (load: LoadOutcome, ms: number): boolean => Object.values(load.refusedAfterMs).every((at) => at !== null && at <= ms);
