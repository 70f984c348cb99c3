import { createRedis } from "./redisClient.ts";
import { resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import type { GerbangConfig, UpstreamConfig } from "../config/schema.ts";
import { openDatabase, type Database } from "../db/openDatabase.ts";
import { migrateOn } from "../db/migrate.ts";
import { redactUrl } from "../db/adminUrl.ts";
import { createAuth, type Auth } from "../auth/createAuth.ts";
import { outboxMailSender, logMailSender, smtpMailSender } from "../auth/mailSender.ts";
import { smsSenderFor } from "../auth/smsSender.ts";
import { pruneSmsCooldowns } from "../auth/phoneOtp.ts";
import { MailQueue } from "../auth/mailQueue.ts";
import { StaleIfError } from "../auth/staleIfError.ts";
import { SessionResolver } from "../auth/sessionResolver.ts";
import { sessionCookieAuthenticator } from "../auth/authenticators/sessionCookieAuthenticator.ts";
import { bearerAuthenticator } from "../auth/authenticators/bearerAuthenticator.ts";
import { apiKeyAuthenticator } from "../auth/authenticators/apiKeyAuthenticator.ts";
import { ApiKeyStore } from "../keys/apiKeyStore.ts";
import { ApiKeyService } from "../keys/apiKeyService.ts";
import { InvalidationBus } from "../keys/invalidationBus.ts";
import { RateLimitCounters } from "../ratelimit/rateLimitCounters.ts";
import { PolicyStore } from "../policy/policyStore.ts";
import { HttpResolver } from "../resolvers/httpResolver.ts";
import { UpstreamResolvers } from "../resolvers/upstreamResolvers.ts";
import { loadSigningKey, signingKeyOptionsOf } from "../identity/signingKey.ts";
import { AssertionSigner } from "../identity/assertionSigner.ts";
import { AuditWriter } from "../audit/auditWriter.ts";
import { checkpointSigner } from "../audit/checkpointSignature.ts";
import { instanceEvent } from "../audit/instanceEvent.ts";
import { pruneAudit } from "../audit/pruneAudit.ts";
import { purgeDueUsers } from "../admin/eraseUser.ts";
import { startOtlpTracer } from "../tracing/otlpTracer.ts";
import { randomUUID } from "node:crypto";
import { ANONYMOUS } from "../auth/principal.ts";
import { buildApp, metricsOf } from "../app.ts";
import { startMetricsListener } from "../metrics/metricsRoutes.ts";
import { startDemoUpstream, type DemoUpstream } from "../demo/upstream.ts";
import { seedDemo } from "../demo/seedDemo.ts";
import { resolveSecret } from "./secret.ts";
import { MIGRATIONS_DIR } from "./migrationsDir.ts";
import { loadActivePolicy } from "./activePolicy.ts";
import { PolicyReloader, type ReloadOutcome } from "./policyReloader.ts";
import type { OperatorServices } from "../admin/operations.ts";
import { ActivationStore } from "../activation/activationStore.ts";
import { PolicySync } from "../activation/policySync.ts";
import { policyDigest } from "../policy/policyDigest.ts";
import { hostname } from "node:os";
import { mkdirSync } from "node:fs";

export interface RunningGateway {
  app: FastifyInstance;
  url: string;
  db: Database;
  auth: Auth;
  demo: DemoUpstream | null;
  /** Re-reads the policy folder (SIGHUP); an invalid version is refused and logged, the running one keeps serving. */
  reloadPolicy(): Promise<ReloadOutcome>;
  /** What the operator's admin endpoint runs operations against: this gateway's own connections and caches. */
  operator: OperatorServices;
  /** Stops accepting, finishes in-flight requests, flushes the audit buffer, closes connections. */
  close(): Promise<void>;
}

export async function startGateway(config: GerbangConfig, options: { log?: (msg: string) => void } = {}): Promise<RunningGateway> {
  const log = options.log ?? ((msg: string) => process.stderr.write(`${msg}\n`));
  const dataDir = resolve(config.dataDir);

  // Policies first: a gateway without a valid active version must not start at all.
  const policies = new PolicyStore(loadActivePolicy(config), config.policy.abilityCacheMaxEntries);
  const reloader = new PolicyReloader(config, policies);
  if (!(config.apiKeys.selfServiceTier in config.rateLimit.tiers)) {
    throw new Error(`config apiKeys.selfServiceTier: ${config.apiKeys.selfServiceTier} is not a rateLimit tier (${Object.keys(config.rateLimit.tiers).join(", ")})`);
  }

  // Business databases next (the Prisma resolver checks its role and subjects): a gateway that could
  // not read its resources' attributes must not start, and nothing else is open yet to wait for.
  const httpResolver = new HttpResolver({
    timeoutMs: config.resolver.timeoutMs,
    cacheTtlMs: config.resolver.cacheTtlMs,
    cacheMaxEntries: config.resolver.cacheMaxEntries,
    headersFor: async (upstream) => ({
      "x-gerbang-assertion": await signer.assertionFor({ ...ANONYMOUS, roles: ["gateway"] }, [], policies.current.policy.version, upstream.name),
    }),
  });
  const resolver = await UpstreamResolvers.open(config.upstreams ?? [], httpResolver, { ...config.resolver, log });

  // Secret, signing key, embedded database and admin endpoint live here: the user's own, not the group's.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = await openDatabase({ url: config.database.url, transactionPooler: config.database.transactionPooler, embeddedDir: resolve(config.database.embeddedDir), poolMax: config.database.poolMax }).catch(async (error: unknown) => {
    await resolver.close();
    throw error;
  });
  try {
    const { applied } = await migrateOn(db, config.database, { migrationsDir: MIGRATIONS_DIR, log });
    if (applied.length > 0) log(`migrations applied: ${applied.join(", ")}`);
  } catch (error) {
    await db.close();
    await resolver.close();
    throw error;
  }

  const key = await loadSigningKey(signingKeyOptionsOf(config));
  const otlp = config.tracing.otlpUrl === undefined ? null : await startOtlpTracer({ url: config.tracing.otlpUrl, serviceName: config.tracing.serviceName, instance: `${hostname()}/${process.pid}` });
  // One chain per process: instances never wait on each other to audit (docs/audit.md).
  const instance = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  const audit = config.audit.enabled
    ? new AuditWriter(db.prisma, db.executor, {
        instance,
        flushIntervalMs: config.audit.flushIntervalMs,
        maxBuffer: config.audit.maxBuffer,
        checkpointIntervalMs: config.audit.checkpointIntervalMs,
        sign: checkpointSigner(key),
        onError: () => log("audit: database write failed; events kept in memory and retried"),
        onLoss: () => log(`audit: the queue is full of security events (audit.maxBuffer ${config.audit.maxBuffer}); new ones are being lost (gerbang_audit_lost_total)`),
      })
    : null;
  const activationOutcomes: Record<string, number> = { activated: 0, unchanged: 0, refused: 0 };
  const auditInstanceEvent = (action: string, allowed: boolean, reason: string, version: string, details: Record<string, string>): void => {
    if (action.startsWith("policy.")) {
      const outcome = allowed ? "activated" : "refused";
      activationOutcomes[outcome] = (activationOutcomes[outcome] ?? 0) + 1;
    }
    audit?.record(instanceEvent({ action, allowed, reason, policyVersion: version, details }));
  };

  // The recorded active version wins over the configured one, which is only the first start's choice:
  // a version folder that appears later is activated by `gerbang policy activate`, never by itself.
  const activations = new ActivationStore(db.prisma);
  const sync = new PolicySync({
    config,
    store: policies,
    activations,
    digest: policyDigest(policies.current.policy.dir),
    log: (level, msg, detail) => log(`${msg} ${JSON.stringify(detail)}`),
    onActivated: (version, digest) => {
      reloader.remember(version, digest);
      auditInstanceEvent("policy.activated", true, "ACTIVATION_RECORDED", version, { digest });
    },
    onRefused: (version) => auditInstanceEvent("policy.refused", false, "ACTIVATION_REFUSED", version, {}),
  });
  try {
    const initial = policies.current.policy;
    await activations.recordInitial({ version: initial.version, digest: policyDigest(initial.dir), activatedBy: `gerbang serve on ${hostname()} (first start)`, reason: "policy.version, or the newest version" });
    await sync.check();
  } catch (error) {
    await db.close();
    await resolver.close();
    throw error;
  }

  const { secret, generated } = resolveSecret(config.secret, dataDir);
  if (generated) log(`using the generated secret in ${dataDir}/secret; set GERBANG_SECRET when running more than one instance`);
  const signer = new AssertionSigner(key, config.identity.ttlSec, config.identity.cacheMaxEntries);

  let demo: DemoUpstream | null = null;
  let upstreams: UpstreamConfig[] = config.upstreams ?? [];
  if (config.demo.upstream) {
    // It listens on a loopback port anyone on the host can reach: it believes only signed assertions.
    demo = await startDemoUpstream({ host: "127.0.0.1", port: 0, jwks: signer.jwks });
    log(`demo marketplace upstream at ${demo.url}: it accepts only requests that carry the gateway's signed assertion`);
    upstreams = [{ name: "marketplace", prefix: "/api", url: demo.url, timeoutMs: 10000, circuitBreaker: { failureThreshold: 5, openMs: 5000, maxOpenMs: 60000 } }, ...upstreams];
  }

  const port = config.server.port;
  const publicUrl = config.server.publicUrl ?? `http://localhost:${port}`;
  const { transport, smtpUrl, from } = config.auth.mail;
  const smtp = transport === "smtp" && smtpUrl !== undefined ? smtpMailSender({ url: smtpUrl, from }) : null;
  const mail = new MailQueue(smtp ?? (transport === "outbox" ? outboxMailSender(db.prisma) : logMailSender(log)), {
    log: (_level, msg, detail) => log(`${msg} (kind ${detail.kind}${detail.attempt === undefined ? "" : `, attempt ${detail.attempt}`})`),
  });
  const sms = smsSenderFor(config.auth.phone.sms, db.prisma, log);
  const auth = createAuth({
    prisma: db.prisma,
    secret,
    publicUrl,
    trustedOrigins: config.server.publicUrl === undefined ? [...config.auth.trustedOrigins, `http://127.0.0.1:${port}`] : config.auth.trustedOrigins,
    mail,
    sms,
    log,
    config,
  });
  // One stale-if-error model for sessions and keys; it trusts the cache only while revocations can reach it.
  const staleIfError = new StaleIfError({ boundMs: config.auth.staleIfErrorMs, channelConnected: () => bus.connected, log });
  const needSecondFactor = new Set(config.auth.twoFactor.requiredForRoles);
  const sessions = new SessionResolver(auth, config.auth.sessionCacheTtlMs, staleIfError, config.auth.sessionCacheMaxEntries, needSecondFactor);

  // An unreachable Redis makes the gateway not ready, not absent: keys still verify from the database.
  // No offline queue and a command timeout: while Redis is away, callers learn it at once and fall back.
  const redis = createRedis(config.redis, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: config.redis.commandTimeoutMs });
  const subscriber = createRedis(config.redis, { maxRetriesPerRequest: null, connectTimeout: 2000, retryStrategy: (n) => Math.min(n * 100, 1000) });
  subscriber?.on("error", () => undefined);
  if (redis !== null) {
    redis.on("error", () => undefined);
    await redis.connect().catch(() => log("redis: not reachable at start; /readyz reports it"));
  }

  const keyStore = new ApiKeyStore(db.prisma, { ...config.apiKeys, staleIfError, needSecondFactor: config.auth.twoFactor.requiredForRoles, onFlushError: () => log("api keys: last-used write failed; kept for the next batch") });
  const bus = new InvalidationBus(redis, subscriber, config.redis.keyPrefix, log);
  const rateLimitCounters = new RateLimitCounters({ redis, keyPrefix: `${config.redis.keyPrefix}rl:`, log, maxWindows: config.rateLimit.maxWindows });
  bus.onInvalidate((message) => {
    if (message.kind === "policy") void sync.check();
    else if (message.kind === "key") keyStore.invalidateKey(message.id);
    else if (message.kind === "user") {
      keyStore.invalidateOwner(message.id);
      sessions.forgetUser(message.id);
    } else {
      keyStore.invalidateAll();
      sessions.forgetAll();
      // "all" also follows a reconnect, when an activation message may have been missed.
      void sync.check();
    }
  });
  bus.start();
  const keyService = new ApiKeyService(auth, db.prisma, {
    tiers: Object.keys(config.rateLimit.tiers),
    scopes: () => new Set(policies.current.policy.scopes.keys()),
    maxExpiresInDays: config.apiKeys.maxExpiresInDays,
    bus,
  });

  // The admin API needs the activation services, which exist once the gateway has started.
  let operatorServices: OperatorServices | null = null;
  const app = await buildApp({
    adminServices: () => operatorServices,
    config,
    publicUrl,
    upstreams,
    auth,
    sessions,
    authenticators: [apiKeyAuthenticator(keyStore), bearerAuthenticator(sessions), sessionCookieAuthenticator(sessions)],
    policies,
    resolver,
    signer,
    audit,
    auditStore: db.prisma,
    keyStats: keyStore.stats,
    resolverStats: resolver.stats,
    activationOutcomes: () => activationOutcomes,
    ...(otlp === null ? {} : { tracer: otlp.tracer }),
    keys: { service: keyService, selfServiceTier: config.apiKeys.selfServiceTier },
    onUserChanged: (userId) => void bus.publish(userId === null ? { kind: "all" } : { kind: "user", id: userId }),
    rateLimitCounters,
    revocations: bus,
    readiness: [
      {
        name: "database",
        check: async () => {
          try {
            await db.ping();
          } catch (error) {
            staleIfError.failed(Date.now());
            throw error;
          }
          staleIfError.recovered(Date.now());
        },
        describe: () => staleIfError.mode(),
      },
      // Redis down degrades the gateway (rate limits per instance, closed buckets refuse) but leaves it serving.
      ...(redis === null
        ? []
        : [
            { name: "redis", critical: false, check: async () => void (await redis.ping()) },
            {
              name: "rateLimit",
              critical: false,
              check: async () => {
                if (rateLimitCounters.status().redis === "down") throw new Error("counting without Redis");
              },
            },
          ]),
      ...resolver.readiness(),
      { name: "policy", check: async () => void policies.current.policy.version, describe: () => ({ version: policies.current.policy.version }) },
      {
        name: "policyActivation",
        check: async () => {
          if (sync.problem !== null) throw new Error(sync.problem);
        },
        describe: () => (sync.problem === null ? { state: "serving" } : { state: "refused", problem: sync.problem }),
      },
      {
        name: "policyReload",
        critical: false,
        check: async () => {
          if (reloader.lastRefusal !== null) throw new Error(reloader.lastRefusal);
        },
      },
    ],
  });

  await app.listen({ host: config.server.host, port });
  const metrics = metricsOf(app);
  const metricsListener = metrics !== null && config.metrics.port !== undefined ? await startMetricsListener(metrics, config.metrics.host, config.metrics.port) : null;
  const address = app.server.address();
  const boundPort = typeof address === "object" && address !== null ? address.port : port;
  const url = `http://${config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host}:${boundPort}`;
  app.log.info({ url, policy: policies.current.policy.version, database: db.kind === "postgres" && config.database.url ? redactUrl(config.database.url) : "embedded", upstreams: upstreams.map((u) => `${u.name}=${u.prefix}`) }, "gerbang listening");

  sync.start();
  // Retention runs on every instance; an advisory lock lets one prune at a time.
  const retention = config.audit.retentionDays === undefined ? null : setInterval(() => void pruneAuditTick(), 3_600_000);
  retention?.unref();
  const pruneAuditTick = async (): Promise<void> => {
    const days = config.audit.retentionDays;
    if (days === undefined) return;
    try {
      const result = await pruneAudit(db.prisma, new Date(Date.now() - days * 86_400_000), checkpointSigner(key));
      if (result.deleted > 0) {
        app.log.info({ deleted: result.deleted, chains: result.cut.length }, "audit retention: old events deleted");
        audit?.record(instanceEvent({ action: "audit.pruned", allowed: true, reason: "RETENTION", policyVersion: policies.current.policy.version, details: { deleted: result.deleted } }));
      }
    } catch {
      log("audit retention: pruning failed; retried in an hour");
    }
  };

  // Erasure's second step runs on every instance too; each purge locks its user's row, so two
  // instances never purge one user twice. The first check comes a minute after start.
  const purgeTick = async (): Promise<void> => {
    try {
      await pruneSmsCooldowns(db.prisma);
      for (const id of await purgeDueUsers(db.prisma)) {
        audit?.record(instanceEvent({ action: "user.purged", allowed: true, reason: "GRACE_PERIOD_OVER", target: id, policyVersion: policies.current.policy.version }));
      }
    } catch {
      log("erasure: purging deleted users failed; retried in an hour");
    }
  };
  const purging = [setTimeout(() => void purgeTick(), 60_000), setInterval(() => void purgeTick(), 3_600_000)];
  for (const timer of purging) timer.unref();

  // A reload activates the configured (or newest) version here and records it, so the others follow.
  const reloadPolicy = (): Promise<ReloadOutcome> =>
    sync.exclusive(async () => {
      const result = reloader.reload();
      if (result.outcome === "activated") {
        const digest = policyDigest(policies.current.policy.dir);
        await activations.record({ version: result.version, digest, activatedBy: `reload on ${hostname()} (pid ${process.pid})`, reason: "SIGHUP or gerbang policy reload" });
        sync.activatedHere(result.version, digest);
        await bus.publish({ kind: "policy" });
      }
      return result;
    }).then((result) => {
    if (result.outcome === "activated") auditInstanceEvent("policy.activated", true, "RELOADED", result.version, { previous: result.previous });
    if (result.outcome === "refused") auditInstanceEvent("policy.refused", false, "INVALID_POLICY", result.version, { problems: String(result.problems.length) });
    if (result.outcome === "activated") app.log.info({ version: result.version, previous: result.previous }, "policy reloaded");
    else if (result.outcome === "unchanged") {
      activationOutcomes.unchanged = (activationOutcomes.unchanged ?? 0) + 1;
      app.log.info({ version: result.version }, "policy reload: unchanged");
    }
    else app.log.error({ version: result.version, problems: result.problems.slice(0, 20), active: policies.current.policy.version }, "policy reload refused; the active version keeps serving");
    return result;
  });

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (retention !== null) clearInterval(retention);
      for (const timer of purging) clearTimeout(timer);
      await app.close();
      await metricsListener?.close();
      await sync.close();
      bus.close();
      // Queued mail gets a moment to go out; a dead SMTP server must not hold the shutdown.
      await Promise.race([mail.flush(), new Promise((r) => setTimeout(r, 5000).unref())]);
      const unwritten = (await audit?.close()) ?? 0;
      if (unwritten > 0) log(`audit: ${unwritten} event(s) could not be written before exit (the database is unreachable)`);
      await keyStore.close();
      rateLimitCounters.close();
      subscriber?.disconnect();
      await demo?.close();
      await resolver.close();
      redis?.disconnect();
      smtp?.close();
      await otlp?.shutdown().catch(() => log("tracing: spans could not be sent before exit"));
      await db.close();
    })();
    return closing;
  };
  const operator: OperatorServices = { config, prisma: db.prisma, auth: async () => auth, keys: keyService, activations, bus, reloadPolicy, ...(audit === null ? {} : { audit }) };
  operatorServices = operator;
  // Demo users have published passwords: only the demo (no config file) creates them unless asked.
  // Seeded last, once the admin API can serve: a client that signs in as the first seeded user must
  // not find the gateway's operations still missing (503) while the others are being created.
  const seedUsers = config.demo.seedUsers ?? config.demo.upstream;
  if (seedUsers) await seedDemo(auth, db, demo);
  return { app, url, db, auth, demo, reloadPolicy, operator, close };
}
