import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import { openDatabase } from "../db/openDatabase.ts";
import { migrate } from "../db/migrate.ts";
import { createAuth } from "../auth/createAuth.ts";
import { logMailSender } from "../auth/mailSender.ts";
import { createVerifiedUser } from "../auth/createUser.ts";
import { resolveSecret } from "../runtime/secret.ts";
import { MIGRATIONS_DIR } from "../runtime/migrationsDir.ts";
import { CliError } from "./cliError.ts";

export async function usersCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "create") throw new CliError(`unknown users command ${sub ?? "(none)"}`);
  let values: { config?: string; email?: string; password?: string; role?: string; name?: string; attr?: string[] };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { config: { type: "string" }, email: { type: "string" }, password: { type: "string" }, role: { type: "string" }, name: { type: "string" }, attr: { type: "string", multiple: true } },
      strict: true,
    }));
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const { email, password, role } = values;
  if (email === undefined || password === undefined || role === undefined) throw new CliError("users create needs --email, --password and --role");
  const attributes: Record<string, string> = {};
  for (const pair of values.attr ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`--attr takes key=value, got ${pair}`);
    attributes[pair.slice(0, eq)] = pair.slice(eq + 1);
  }

  const config = loadConfig(values.config === undefined ? {} : { file: values.config });
  const db = await openDatabase({ url: config.database.url, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
  try {
    await migrate(db.executor, { migrationsDir: MIGRATIONS_DIR });
    const auth = createAuth({
      prisma: db.prisma,
      secret: resolveSecret(config.secret, resolve(config.dataDir)).secret,
      publicUrl: config.server.publicUrl ?? `http://localhost:${config.server.port}`,
      trustedOrigins: config.auth.trustedOrigins,
      sessionExpiresInSec: config.auth.sessionExpiresInSec,
      sessionUpdateAgeSec: config.auth.sessionUpdateAgeSec,
      requireEmailVerification: config.auth.requireEmailVerification,
      mail: logMailSender(() => undefined),
    });
    const id = await createVerifiedUser(auth, db.prisma, { email, password, role, attributes, ...(values.name === undefined ? {} : { name: values.name }) });
    process.stdout.write(`${id}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
