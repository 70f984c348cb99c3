import { resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import { openDatabase } from "../db/openDatabase.ts";
import { migrateOn } from "../db/migrate.ts";
import { EmbeddedDatabaseBusy } from "../db/embeddedLock.ts";
import { MIGRATIONS_DIR } from "../runtime/migrationsDir.ts";

export async function migrateCommand(flags: { config?: string }): Promise<number> {
  const config = loadConfig(flags.config === undefined ? {} : { file: flags.config });
  let db;
  try {
    db = await openDatabase({ url: config.database.url, transactionPooler: config.database.transactionPooler, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
  } catch (error) {
    if (error instanceof EmbeddedDatabaseBusy) throw new Error(`${error.message}; a gateway applies migrations itself when it starts, to run them alone stop it first`);
    throw error;
  }
  try {
    const { applied } = await migrateOn(db, config.database, { migrationsDir: MIGRATIONS_DIR, log: (m) => process.stderr.write(`${m}\n`) });
    process.stdout.write(applied.length === 0 ? "database is up to date\n" : `applied: ${applied.join(", ")}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
