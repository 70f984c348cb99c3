import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { SqlExecutor } from "./sqlExecutor.ts";

// The key `prisma migrate deploy` itself locks, so this runner and Prisma's CLI also exclude each other.
const ADVISORY_LOCK_KEY = 72707369;
const LOCK_POLL_MS = 200;
const DEFAULT_LOCK_TIMEOUT_MS = 10 * 60_000;

// Same table as Prisma's, so `prisma migrate deploy/status` can take over a database this runner set up.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrateOptions {
  migrationsDir: string;
  log?: (msg: string) => void;
  /** How long to wait for another instance's migration run to finish; default 10 minutes. */
  lockTimeoutMs?: number;
}

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

// Prisma accepts a checksum taken with either line ending, so a checkout with git autocrlf is not
// reported as an edited migration.
function checksumMatches(sql: string, checksum: string): boolean {
  const normalized = sql.replace(/\r\n/g, "\n");
  return [sql, normalized, normalized.replace(/\n/g, "\r\n")].some((variant) => sha256(variant) === checksum);
}

async function readMigrations(migrationsDir: string): Promise<MigrationFile[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  // Plain code-unit order, as Prisma sorts: timestamps first, and locale rules must not reorder names.
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const migrations: MigrationFile[] = [];
  for (const name of names) {
    const file = path.join(migrationsDir, name, "migration.sql");
    let sql: string;
    try {
      sql = await readFile(file, "utf8");
    } catch (error) {
      throw new Error(`Migration ${name} has no readable migration.sql (${file})`, { cause: error });
    }
    migrations.push({ name, sql, checksum: sha256(sql) });
  }
  return migrations;
}

async function acquireLock(session: SqlExecutor, timeoutMs: number, log: (msg: string) => void): Promise<void> {
  // Polling pg_try_advisory_lock instead of blocking in pg_advisory_lock keeps every statement short,
  // so a pool's statement_timeout cannot abort an instance that is only waiting its turn.
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    const [row] = await session.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [
      ADVISORY_LOCK_KEY,
    ]);
    if (row?.locked === true) return;
    if (Date.now() >= deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for the migration lock held by another instance`);
    }
    if (!announced) {
      log("waiting for another instance to finish migrating");
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

async function inTransaction<R>(session: SqlExecutor, fn: (tx: SqlExecutor) => Promise<R>): Promise<R> {
  if (session.transaction) return session.transaction(fn);
  await session.exec("BEGIN");
  try {
    const result = await fn(session);
    await session.exec("COMMIT");
    return result;
  } catch (error) {
    await session.exec("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, position } = error as Error & { code?: unknown; position?: unknown };
  const details = [typeof code === "string" ? `code ${code}` : "", typeof position === "string" ? `position ${position}` : ""]
    .filter((part) => part !== "")
    .join(", ");
  return details === "" ? error.message : `${error.message} (${details})`;
}

function refuseUnsafeHistory(rows: MigrationRow[], files: MigrationFile[], log: (msg: string) => void): void {
  const failed = rows.find((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed) {
    throw new Error(
      `Migration ${failed.migration_name} is recorded as failed (or was interrupted) in _prisma_migrations; ` +
        `inspect the database, then mark it rolled back (\`prisma migrate resolve --rolled-back ${failed.migration_name}\`, ` +
        `or set rolled_back_at on row ${failed.id}) before migrating again`,
    );
  }
  const byName = new Map(files.map((file) => [file.name, file]));
  for (const row of rows) {
    if (row.finished_at === null || row.rolled_back_at !== null) continue;
    const file = byName.get(row.migration_name);
    if (!file) {
      log(`migration ${row.migration_name} is applied in the database but missing from the migrations folder`);
      continue;
    }
    if (!checksumMatches(file.sql, row.checksum)) {
      throw new Error(
        `Migration ${row.migration_name} was modified after it was applied: checksum of migration.sql is ` +
          `${file.checksum}, the database recorded ${row.checksum}. Restore the original file and put changes in a new migration`,
      );
    }
  }
}

async function applyOne(session: SqlExecutor, migration: MigrationFile): Promise<void> {
  const id = randomUUID();
  // Recorded before running, outside the transaction, so a failure or crash leaves a visible row that
  // blocks later runs until someone looks, exactly as with Prisma.
  await session.query(
    `INSERT INTO "_prisma_migrations" ("id", "checksum", "migration_name", "started_at", "applied_steps_count")
     VALUES ($1, $2, $3, now(), 0)`,
    [id, migration.checksum, migration.name],
  );
  try {
    await inTransaction(session, async (tx) => {
      // One message, never split on ";": migrations may hold $$ bodies, comments or string literals.
      await tx.exec(migration.sql);
      await tx.query(
        `UPDATE "_prisma_migrations" SET "finished_at" = now(), "applied_steps_count" = 1 WHERE "id" = $1`,
        [id],
      );
    });
  } catch (error) {
    const logs = describeError(error);
    await session.query(`UPDATE "_prisma_migrations" SET "logs" = $2 WHERE "id" = $1`, [id, logs]);
    throw new Error(`Migration ${migration.name} failed and was rolled back: ${logs}`, { cause: error });
  }
}

/**
 * Applies pending migration folders in name order, keeping `_prisma_migrations` exactly as
 * `prisma migrate deploy` does (engine binaries cannot be downloaded where Gerbang is built).
 */
export async function migrate(executor: SqlExecutor, options: MigrateOptions): Promise<{ applied: string[] }> {
  const log = options.log ?? (() => undefined);
  const files = await readMigrations(options.migrationsDir);
  const run = async (session: SqlExecutor): Promise<{ applied: string[] }> => {
    await acquireLock(session, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, log);
    try {
      await session.exec(CREATE_MIGRATIONS_TABLE);
      const rows = await session.query<MigrationRow>(
        `SELECT "id", "checksum", "migration_name", "finished_at", "rolled_back_at"
         FROM "_prisma_migrations" ORDER BY "started_at", "migration_name"`,
      );
      refuseUnsafeHistory(rows, files, log);
      const done = new Set(
        rows.filter((row) => row.finished_at !== null && row.rolled_back_at === null).map((row) => row.migration_name),
      );
      const applied: string[] = [];
      for (const migration of files) {
        if (done.has(migration.name)) continue;
        log(`applying migration ${migration.name}`);
        await applyOne(session, migration);
        applied.push(migration.name);
      }
      if (applied.length === 0) log("database schema is up to date");
      return { applied };
    } finally {
      try {
        await session.query("SELECT pg_advisory_unlock($1)", [ADVISORY_LOCK_KEY]);
      } catch (error) {
        // The lock dies with the connection anyway; do not hide the error that got us here.
        log(`could not release the migration lock: ${describeError(error)}`);
      }
    }
  };
  return executor.session ? executor.session(run) : run(executor);
}

/**
 * Migrates through `database.directUrl` when it is set (the pool's `url` may be a transaction-mode
 * pooler, which cannot hold the session-level migration lock), otherwise through `db` itself.
 */
export async function migrateOn(
  db: { executor: SqlExecutor },
  database: { directUrl?: string | undefined },
  options: MigrateOptions,
): Promise<{ applied: string[] }> {
  if (database.directUrl === undefined) return migrate(db.executor, options);
  const { openDatabase } = await import("./openDatabase.ts");
  const direct = await openDatabase({ url: database.directUrl, embeddedDir: "", poolMax: 2 });
  try {
    return await migrate(direct.executor, options);
  } finally {
    await direct.close();
  }
}
