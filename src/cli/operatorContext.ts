import { resolve } from "node:path";
import type { RedisClient as Redis } from "../runtime/redisClient.ts";
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { AuditWriter } from "../audit/auditWriter.ts";
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

async function cliAuditWriter(config: GerbangConfig, db: Database): Promise<AuditWriter> {
  const { AuditWriter } = await import("../audit/auditWriter.ts");
  // Loaded only when a checkpoint is signed (after an audited change), not by every command.
  const sign = async (payload: string): Promise<{ kid: string; signature: string } | null> => {
    const [{ readSigningKey, signingKeyOptionsOf }, { checkpointSigner }] = await Promise.all([import("../identity/signingKey.ts"), import("../audit/checkpointSignature.ts")]);
    const key = await readSigningKey(signingKeyOptionsOf(config));
    return key === null ? null : checkpointSigner(key)(payload);
  };
  return new AuditWriter(db.prisma, db.executor, { instance: `cli/${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`, flushIntervalMs: 50, maxBuffer: 1000, sign });
}

export interface OperatorContext {
  services: OperatorServices;
  db: Database;
  close(): Promise<void>;
}

async function connectRedis(config: GerbangConfig): Promise<Redis | null> {
  const { createRedis } = await import("../runtime/redisClient.ts");
  const client = createRedis(config.redis, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy: () => null });
  if (client === null) return null;
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
  const db = await openDatabase({ url: config.database.url, transactionPooler: config.database.transactionPooler, embeddedDir: resolve(config.database.embeddedDir), poolMax: 2 });
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
        // Operators' commands never send a code (no phone route runs here).
        sms: { send: async () => Promise.reject(new Error("the CLI sends no SMS")) },
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
  // The command's own audit chain, signed with the gateway's key when this machine has it.
  const audit = config.audit.enabled ? await cliAuditWriter(config, db) : undefined;
  return {
    services: { config, prisma: db.prisma, auth: loadAuth, keys, activations: new ActivationStore(db.prisma), bus, ...(audit === undefined ? {} : { audit }) },
    db,
    close: async () => {
      const unwritten = (await audit?.close(5000)) ?? 0;
      if (unwritten > 0) process.stderr.write(`gerbang: the change was made, but its audit event could not be written (${unwritten} event(s))\n`);
      redis?.disconnect();
      await db.close();
    },
  };
}
