// What a test beside a running gateway environment uses: its database, and the CLI on its config
// (with this process's DATABASE_URL and the like kept out, so the config file alone decides).
import pg from "pg";
import type { GatewayEnv } from "./gatewayEnv.ts";
import { runGerbang } from "./processes.ts";

export type CliRun = { code: number | null; stdout: string; stderr: string };

/** A connected client of the environment's PostgreSQL database; `end` it at teardown. */
export async function databaseOf(env: GatewayEnv): Promise<pg.Client> {
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  return db;
}

export const CLEAN_ENV: NodeJS.ProcessEnv = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };

/** `gerbang <args> --config <the environment's config>`. */
export const cliOf = (env: Pick<GatewayEnv, "configFile">) => (...args: string[]): Promise<CliRun> => runGerbang([...args, "--config", env.configFile], CLEAN_ENV);
