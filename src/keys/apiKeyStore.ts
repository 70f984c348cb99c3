import { timingSafeEqual } from "node:crypto";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { rolesForCredential, rolesFromField, type Principal } from "../auth/principal.ts";
import type { AuthnResult } from "../auth/authenticators/authenticator.ts";
import { checkApiKeyShape, hashApiKey } from "./apiKeyFormat.ts";
import { parseKeyMetadata } from "./keyMetadata.ts";
import type { StaleIfError } from "../auth/staleIfError.ts";

/** What verification needs of a key row and its owner, cached per key hash. */
interface KeyRecord {
  id: string;
  ownerId: string;
  enabled: boolean;
  expiresAt: number | null;
  principal: Principal;
  ownerBanned: boolean;
}

interface Cached {
  record: KeyRecord | null;
  /** Fresh until then (apiKeys.cacheTtlMs); when it was last read from the database (stale-if-error). */
  until: number;
  verifiedAt: number;
}

export interface ApiKeyStoreOptions {
  cacheTtlMs: number;
  negativeCacheTtlMs: number;
  cacheMaxEntries: number;
  lastUsedFlushMs: number;
  onFlushError?: (error: unknown) => void;
  /** Serves known keys past their TTL while the database is unreachable (src/auth/staleIfError.ts). */
  staleIfError?: StaleIfError;
  /** auth.twoFactor.requiredForRoles: roles that never act through a key. */
  needSecondFactor?: readonly string[];
}

/**
 * Verifies API keys on the hot path: a shape/checksum check, one SHA-256 and a map lookup. The
 * database is asked only on a miss (concurrent misses share one query); unknown keys are cached
 * as unknown. Expiry and revocation are re-checked on every hit, so an expired key fails at its
 * deadline; revocation and owner changes arrive through `invalidate*` (Redis pub/sub), and
 * `cacheTtlMs` bounds any lost invalidation.
 */
export class ApiKeyStore {
  private readonly known = new Map<string, Cached>();
  private readonly unknown = new Map<string, number>();
  private readonly pending = new Map<string, Promise<KeyRecord | null>>();
  private readonly lastUsed = new Map<string, Date>();
  private readonly timer: NodeJS.Timeout;
  /** Bumped by every invalidation: a lookup that started before one must not fill the cache. */
  private generation = 0;

  private readonly prisma: PrismaClient;
  private readonly options: ApiKeyStoreOptions;
  private readonly needSecondFactor: ReadonlySet<string>;

  constructor(
    prisma: PrismaClient,
    options: ApiKeyStoreOptions,
  ) {
    this.prisma = prisma;
    this.options = options;
    this.needSecondFactor = new Set(options.needSecondFactor ?? []);
    this.timer = setInterval(() => void this.flushLastUsed(), options.lastUsedFlushMs);
    this.timer.unref();
  }

  /** Read by the metrics at scrape time. */
  readonly stats = { hits: 0, misses: 0 };

  async verify(key: string): Promise<AuthnResult> {
    const problem = checkApiKeyShape(key);
    if (problem !== null) return { kind: "rejected", reason: `api key ${problem.toLowerCase().replace(/_/g, " ")}` };
    const hash = hashApiKey(key);
    const now = Date.now();

    let record: KeyRecord | null;
    let missed = false;
    const hit = this.known.get(hash);
    const stale = this.options.staleIfError;
    if (hit !== undefined && hit.until > now) record = hit.record;
    else if ((this.unknown.get(hash) ?? 0) > now) record = null;
    else if (hit !== undefined && stale !== undefined && stale.skipLookup(now) && stale.allows(hit.verifiedAt, now)) record = hit.record;
    else {
      missed = true;
      try {
        record = await this.lookup(hash, now);
        stale?.recovered(Date.now());
      } catch (error) {
        stale?.failed(Date.now());
        // Re-read after the wait: an invalidation that arrived meanwhile removed the entry.
        const still = this.known.get(hash);
        // Otherwise the error propagates: the authenticate stage answers 503, never anonymous.
        if (still === undefined || stale === undefined || !stale.allows(still.verifiedAt, Date.now())) throw error;
        record = still.record;
      }
    }

    this.stats[missed ? "misses" : "hits"] += 1;
    if (record === null) return { kind: "rejected", reason: "api key unknown" };
    if (!record.enabled) return { kind: "rejected", reason: "api key revoked" };
    if (record.expiresAt !== null && record.expiresAt <= now) return { kind: "rejected", reason: "api key expired" };
    if (record.ownerBanned) return { kind: "rejected", reason: "api key owner is banned" };
    this.lastUsed.set(record.id, new Date(now));
    return { kind: "authenticated", principal: record.principal, credentialKey: `key:${record.id}` };
  }

  private lookup(hash: string, now: number): Promise<KeyRecord | null> {
    const inFlight = this.pending.get(hash);
    if (inFlight !== undefined) return inFlight;
    const generation = this.generation;
    const promise: Promise<KeyRecord | null> = this.load(hash)
      .then((record) => {
        if (generation === this.generation) this.remember(hash, record, now);
        return record;
      })
      .finally(() => {
        if (this.pending.get(hash) === promise) this.pending.delete(hash);
      });
    this.pending.set(hash, promise);
    return promise;
  }

  private async load(hash: string): Promise<KeyRecord | null> {
    // Errors (database down) propagate: the authenticate stage answers 503, never anonymous.
    const row = await this.prisma.apikey.findUnique({
      where: { key: hash },
      select: { id: true, key: true, enabled: true, expiresAt: true, metadata: true, user: { select: { id: true, email: true, role: true, banned: true, banExpires: true, region: true, deletedAt: true } } },
    });
    // The index found the row by hash; compare again in constant time so no code path compares a secret-derived value with ===.
    if (row === null || !timingSafeEqual(Buffer.from(row.key), Buffer.from(hash))) return null;
    const meta = parseKeyMetadata(row.metadata);
    const { user } = row;
    // A deleted owner's keys are revoked already; refused as banned all the same.
    const banned = user.deletedAt !== null || (user.banned === true && (user.banExpires === null || user.banExpires.getTime() > Date.now()));
    return {
      id: row.id,
      ownerId: user.id,
      enabled: row.enabled !== false && meta !== null && meta.revokedAt === undefined,
      expiresAt: row.expiresAt?.getTime() ?? null,
      ownerBanned: banned,
      principal: {
        userId: user.id,
        // A key cannot present a second factor: the roles that need one never act through it.
        ...rolesForCredential(rolesFromField(user.role), this.needSecondFactor, false),
        authMethod: "api-key",
        attributes: { id: user.id, email: user.email, region: user.region ?? undefined },
        key: { id: row.id, tier: meta?.tier ?? "", scopes: Object.freeze(meta?.scopes ?? []) },
      },
    };
  }

  private remember(hash: string, record: KeyRecord | null, now: number): void {
    if (record === null) {
      // Gone from the database: never a stale-if-error fallback again.
      this.known.delete(hash);
      if (this.options.negativeCacheTtlMs <= 0) return;
      if (this.unknown.size >= this.options.cacheMaxEntries) this.unknown.clear();
      this.unknown.set(hash, now + this.options.negativeCacheTtlMs);
      return;
    }
    if (this.options.cacheTtlMs <= 0) return;
    if (this.known.size >= this.options.cacheMaxEntries) this.known.delete(this.known.keys().next().value ?? "");
    this.known.set(hash, { record, until: now + this.options.cacheTtlMs, verifiedAt: now });
  }

  /** A key changed (revoked, rotated, expiry moved): forget it. */
  invalidateKey(id: string): void {
    this.generation++;
    // Requests arriving from now on must not join a lookup that started before the change.
    this.pending.clear();
    for (const [hash, entry] of this.known) if (entry.record?.id === id) this.known.delete(hash);
  }

  /** An owner changed (role, ban, deletion): forget all of their keys. */
  invalidateOwner(userId: string): void {
    this.generation++;
    // Requests arriving from now on must not join a lookup that started before the change.
    this.pending.clear();
    for (const [hash, entry] of this.known) if (entry.record?.ownerId === userId) this.known.delete(hash);
  }

  /** Invalidations may have been missed (Redis reconnected): start over. */
  invalidateAll(): void {
    this.generation++;
    // Requests arriving from now on must not join a lookup that started before the change.
    this.pending.clear();
    this.known.clear();
    this.unknown.clear();
  }

  /** Last-used times, one statement per batch instead of one write per request. */
  async flushLastUsed(): Promise<void> {
    if (this.lastUsed.size === 0) return;
    const batch = [...this.lastUsed];
    this.lastUsed.clear();
    try {
      await this.prisma.$executeRaw`UPDATE "apikey" AS k SET "lastRequest" = v.t
        FROM unnest(${batch.map(([id]) => id)}::text[], ${batch.map(([, at]) => at.toISOString())}::timestamp[]) AS v(id, t)
        WHERE k.id = v.id AND (k."lastRequest" IS NULL OR k."lastRequest" < v.t)`;
    } catch (error) {
      // Keep the newest times for the next attempt; last-used is informational, never a reason to fail a request.
      for (const [id, at] of batch) if (!this.lastUsed.has(id)) this.lastUsed.set(id, at);
      this.options.onFlushError?.(error);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushLastUsed();
  }
}
