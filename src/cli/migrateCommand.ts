import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import { openDatabase } from "../db/openDatabase.ts";
import { migrate } from "../db/migrate.ts";
import { MIGRATIONS_DIR } from "../runtime/migrationsDir.ts";
import { CliError } from "./cliError.ts";

export async function migrateCommand(argv: string[]): Promise<number> {
  let values: { config?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: "string" } }, strict: true }));
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const config = loadConfig(values.config === undefined ? {} : { file: values.config });
  const db = await openDatabase({ url: config.database.url, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
  try {
    const { applied } = await migrate(db.executor, { migrationsDir: MIGRATIONS_DIR, log: (m) => process.stderr.write(`${m}\n`) });
    process.stdout.write(applied.length === 0 ? "database is up to date\n" : `applied: ${applied.join(", ")}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
