import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { withDatabase } from "../../src/db/adminUrl.ts";
import { migrate } from "../../src/db/migrate.ts";
import { pgExecutor } from "../../src/db/sqlExecutor.ts";
import { testPgUrl } from "./services.ts";

/** Absolute path of prisma/migrations. */
export const migrationsDir = fileURLToPath(new URL("../../prisma/migrations", import.meta.url));

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function withAdmin<R>(fn: (client: pg.Client) => Promise<R>): Promise<R> {
  const client = new pg.Client({ connectionString: testPgUrl(), connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A throwaway database on the test server (GERBANG_TEST_PG_URL), migrated unless `migrate: false`.
 * Call `drop()` from `t.teardown`.
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `gerbang_t_${randomBytes(6).toString("hex")}`;
  // Identifiers cannot be bound as parameters; the name is generated here and quoted anyway.
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = withDatabase(testPgUrl(), name);
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    dropped = true;
    await withAdmin(async (admin) => {
      // Pools a test forgot to end would otherwise make DROP DATABASE fail with "being accessed".
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [name],
      );
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
    });
  };
  if (options.migrate !== false) {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on("error", () => undefined);
    try {
      await migrate(pgExecutor(pool), { migrationsDir });
    } catch (error) {
      await pool.end();
      await drop();
      throw error;
    }
    await pool.end();
  }
  return { url, name, drop };
}
