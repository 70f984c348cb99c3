import { resolve } from "node:path";
import type { Redis } from "ioredis";
import type { GerbangConfig } from "../config/schema.ts";
import { openDatabase, type Database } from "../db/openDatabase.ts";
import { migrate } from "../db/migrate.ts";
import type { Auth } from "../auth/createAuth.ts";
import { ApiKeyService } from "../keys/apiKeyService.ts";
import { InvalidationBus } from "../keys/invalidationBus.ts";
import { resolveSecret } from "../runtime/secret.ts";
import { MIGRATIONS_DIR } from "../runtime/migrationsDir.ts";
import { loadActivePolicy } from "../runtime/activePolicy.ts";
import type { OperatorServices } from "../admin/operations.ts";
import { ActivationStore } from "../activation/activationStore.ts";

export interface OperatorContext {
  services: OperatorServices;
  db: Database;
  close(): Promise<void>;
}

async function connectRedis(config: GerbangConfig): Promise<Redis | null> {
  if (config.redis.url === undefined) return null;
  const { Redis } = await import("ioredis");
  const client = new Redis(config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return client;
  } catch {
    client.disconnect();
    process.stderr.write(`gerbang: Redis unreachable; running gateways notice the change within apiKeys.cacheTtlMs (${config.apiKeys.cacheTtlMs} ms)\n`);
    return null;
  }
}

/**
 * The CLI's own connections for an operation: the configured database (migrated), a Redis publisher
 * when configured (running gateways drop changed keys and users at once), and Better Auth, which is
 * loaded only by the commands that need it (it is most of a command's start-up time).
 */
export async function openOperatorContext(config: GerbangConfig): Promise<OperatorContext> {
  const db = await openDatabase({ url: config.database.url, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
  let redis: Redis | null = null;
  try {
    [redis] = await Promise.all([connectRedis(config), migrate(db.executor, { migrationsDir: MIGRATIONS_DIR })]);
  } catch (error) {
    await db.close();
    throw error;
  }
  let auth: Promise<Auth> | undefined;
  const loadAuth = (): Promise<Auth> =>
    (auth ??= Promise.all([import("../auth/createAuth.ts"), import("../auth/mailSender.ts")]).then(([{ createAuth }, { logMailSender }]) =>
      createAuth({
        prisma: db.prisma,
        secret: resolveSecret(config.secret, resolve(config.dataDir)).secret,
        publicUrl: config.server.publicUrl ?? `http://localhost:${config.server.port}`,
        trustedOrigins: config.auth.trustedOrigins,
        mail: logMailSender(() => undefined),
        config,
      }),
    ));
  let scopes: ReadonlySet<string> | null = null;
  // The CLI exits right after: a publish Redis did not take is not retried, so say what that means.
  const bus = new InvalidationBus(redis, null, config.redis.keyPrefix, () =>
    process.stderr.write(`gerbang: Redis did not take the change; running gateways notice it within apiKeys.cacheTtlMs (${config.apiKeys.cacheTtlMs} ms) or policy.activationCheckMs\n`),
  );
  const keys = new ApiKeyService(loadAuth, db.prisma, {
    tiers: Object.keys(config.rateLimit.tiers),
    scopes: () => (scopes ??= new Set(loadActivePolicy(config).scopes.keys())),
    maxExpiresInDays: config.apiKeys.maxExpiresInDays,
    bus,
  });
  return {
    services: { config, prisma: db.prisma, auth: loadAuth, keys, activations: new ActivationStore(db.prisma), bus },
    db,
    close: async () => {
      redis?.disconnect();
      await db.close();
    },
  };
}
