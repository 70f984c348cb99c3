import { resolve } from "node:path";
import { Redis } from "ioredis";
import { loadConfig } from "../config/loadConfig.ts";
import type { GerbangConfig } from "../config/schema.ts";
import { openDatabase, type Database } from "../db/openDatabase.ts";
import { migrate } from "../db/migrate.ts";
import { createAuth, type Auth } from "../auth/createAuth.ts";
import { logMailSender } from "../auth/mailSender.ts";
import { resolveSecret } from "../runtime/secret.ts";
import { MIGRATIONS_DIR } from "../runtime/migrationsDir.ts";

export interface OperatorContext {
  config: GerbangConfig;
  db: Database;
  auth: Auth;
  /** Connected publisher for cache invalidations, or null (no REDIS_URL, or unreachable: a warning was printed). */
  redis: Redis | null;
  close(): Promise<void>;
}

/** What an operator command needs: the configured database (migrated), Better Auth, and Redis if configured. */
export async function openOperatorContext(configFile: string | undefined, options: { redis?: boolean } = {}): Promise<OperatorContext> {
  const config = loadConfig(configFile === undefined ? {} : { file: configFile });
  const db = await openDatabase({ url: config.database.url, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
  let redis: Redis | null = null;
  try {
    await migrate(db.executor, { migrationsDir: MIGRATIONS_DIR });
    if (options.redis === true && config.redis.url !== undefined) {
      const client = new Redis(config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy: () => null });
      client.on("error", () => undefined);
      try {
        await client.connect();
        redis = client;
      } catch {
        client.disconnect();
        process.stderr.write(`gerbang: Redis unreachable; running gateways notice the change within apiKeys.cacheTtlMs (${config.apiKeys.cacheTtlMs} ms)\n`);
      }
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  const auth = createAuth({
    prisma: db.prisma,
    secret: resolveSecret(config.secret, resolve(config.dataDir)).secret,
    publicUrl: config.server.publicUrl ?? `http://localhost:${config.server.port}`,
    trustedOrigins: config.auth.trustedOrigins,
    mail: logMailSender(() => undefined),
    config,
  });
  return {
    config,
    db,
    auth,
    redis,
    close: async () => {
      redis?.disconnect();
      await db.close();
    },
  };
}
