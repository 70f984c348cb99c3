import { resolve } from "node:path";
import { Redis } from "ioredis";
import type { GerbangConfig } from "../config/schema.ts";
import { openDatabase, type Database } from "../db/openDatabase.ts";
import { migrate } from "../db/migrate.ts";
import { createAuth } from "../auth/createAuth.ts";
import { logMailSender } from "../auth/mailSender.ts";
import { ApiKeyService } from "../keys/apiKeyService.ts";
import { InvalidationBus } from "../keys/invalidationBus.ts";
import { resolveSecret } from "../runtime/secret.ts";
import { MIGRATIONS_DIR } from "../runtime/migrationsDir.ts";
import { loadActivePolicy } from "../runtime/activePolicy.ts";
import type { OperatorServices } from "../admin/operations.ts";

export interface OperatorContext {
  services: OperatorServices;
  db: Database;
  close(): Promise<void>;
}

/**
 * The CLI's own connections for an operation: the configured database (migrated), Better Auth, and a
 * Redis publisher when configured, so running gateways drop changed keys and users at once.
 */
export async function openOperatorContext(config: GerbangConfig): Promise<OperatorContext> {
  const db = await openDatabase({ url: config.database.url, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
  let redis: Redis | null = null;
  try {
    await migrate(db.executor, { migrationsDir: MIGRATIONS_DIR });
    if (config.redis.url !== undefined) {
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
  let scopes: ReadonlySet<string> | null = null;
  const keys = new ApiKeyService(auth, db.prisma, {
    tiers: Object.keys(config.rateLimit.tiers),
    scopes: () => (scopes ??= new Set(loadActivePolicy(config).scopes.keys())),
    maxExpiresInDays: config.apiKeys.maxExpiresInDays,
    bus: new InvalidationBus(redis, null, config.redis.keyPrefix),
  });
  return {
    services: { config, prisma: db.prisma, auth, keys },
    db,
    close: async () => {
      redis?.disconnect();
      await db.close();
    },
  };
}
