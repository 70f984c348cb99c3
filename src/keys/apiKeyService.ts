import type { Auth } from "../auth/createAuth.ts";
import type { Prisma, PrismaClient } from "../generated/prisma/client.ts";
import { GerbangError } from "../errors/catalogue.ts";
import type { InvalidationBus } from "./invalidationBus.ts";
import { parseKeyMetadata, type KeyMetadata } from "./keyMetadata.ts";

/** A key as listed: never the key, never its hash. */
export interface KeyView {
  id: string;
  name: string | null;
  start: string | null;
  ownerId: string;
  ownerEmail: string;
  tier: string;
  scopes: string[];
  status: "active" | "revoked" | "expired";
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  rotatedTo: string | null;
  rotatedFrom: string | null;
}

export interface NewKey {
  ownerId: string;
  name: string;
  tier: string;
  scopes: readonly string[];
  expiresInSec?: number;
}

export interface ApiKeyServiceOptions {
  tiers: readonly string[];
  /** Scope ids of the active policy version. */
  scopes: () => ReadonlySet<string>;
  maxExpiresInDays: number;
  bus: InvalidationBus | null;
}

const VIEW_SELECT = {
  id: true, name: true, start: true, referenceId: true, enabled: true, expiresAt: true, createdAt: true, lastRequest: true, metadata: true,
  user: { select: { email: true } },
} as const;
type Row = Prisma.ApikeyGetPayload<{ select: typeof VIEW_SELECT }>;

/**
 * Key lifecycle shared by the CLI and the HTTP endpoints: issue (through Better Auth's API key
 * plugin, which generates, hashes and stores), list, revoke, rotate with a grace period. Every
 * change is published so all instances drop the key from their caches at once. `access` is the
 * caller's visibility (from @casl/prisma accessibleBy); the operator's CLI passes `{}`.
 */
export class ApiKeyService {
  /** Better Auth, or how to get it: the CLI loads it only for the commands that issue keys. */
  private readonly auth: Auth | (() => Promise<Auth>);
  private readonly prisma: PrismaClient;
  private readonly options: ApiKeyServiceOptions;

  constructor(
    auth: Auth | (() => Promise<Auth>),
    prisma: PrismaClient,
    options: ApiKeyServiceOptions,
  ) {
    this.auth = auth;
    this.prisma = prisma;
    this.options = options;
  }

  private async authApi(): Promise<Auth["api"]> {
    return (typeof this.auth === "function" ? await this.auth() : this.auth).api;
  }

  async create(input: NewKey): Promise<{ key: string; view: KeyView }> {
    const meta = this.checkNew(input);
    // Every key expires: without a lifetime it gets the longest allowed.
    const expiresIn = input.expiresInSec ?? this.options.maxExpiresInDays * 86400;
    const created = await (await this.authApi()).createApiKey({ body: { userId: input.ownerId, name: input.name, metadata: meta, expiresIn } });
    const view = await this.find(created.id, {});
    if (view === null) throw new GerbangError("INTERNAL_ERROR");
    return { key: created.key, view };
  }

  async list(access: Prisma.ApikeyWhereInput, ownerId?: string): Promise<KeyView[]> {
    const rows = await this.prisma.apikey.findMany({
      where: { AND: [access, ownerId === undefined ? {} : { referenceId: ownerId }] },
      select: VIEW_SELECT,
      orderBy: { createdAt: "asc" },
    });
    return rows.map(toView);
  }

  async find(id: string, access: Prisma.ApikeyWhereInput): Promise<KeyView | null> {
    const row = await this.prisma.apikey.findFirst({ where: { AND: [access, { id }] }, select: VIEW_SELECT });
    return row === null ? null : toView(row);
  }

  /** Revoked keys stay listed (who had what, and when it ended); they never verify again. */
  async revoke(id: string, access: Prisma.ApikeyWhereInput): Promise<KeyView> {
    const row = await this.row(id, access);
    const meta = parseKeyMetadata(row.metadata);
    await this.prisma.apikey.update({
      where: { id },
      data: { enabled: false, updatedAt: new Date(), metadata: JSON.stringify({ ...(meta ?? { tier: "", scopes: [] }), revokedAt: new Date().toISOString() }) },
    });
    await this.options.bus?.publish({ kind: "key", id });
    return (await this.find(id, {})) ?? toView(row);
  }

  /** Revokes every active key of a user (a compromised or closed account); the ids revoked. */
  async revokeAllOf(userId: string): Promise<string[]> {
    const revoked: string[] = [];
    for (const key of await this.list({}, userId)) {
      if (key.status !== "active") continue;
      await this.revoke(key.id, {});
      revoked.push(key.id);
    }
    return revoked;
  }

  /**
   * Issues a successor with the same owner, name, tier, scopes and expiry; the old key keeps
   * working until now + grace (or its own expiry, if sooner), then fails everywhere.
   */
  async rotate(id: string, graceSec: number, access: Prisma.ApikeyWhereInput): Promise<{ key: string; view: KeyView; previous: KeyView }> {
    const row = await this.row(id, access);
    const meta = parseKeyMetadata(row.metadata);
    const view = toView(row);
    if (meta === null || view.status !== "active") throw new GerbangError("MALFORMED_REQUEST", { message: `key ${id} is ${view.status}; only active keys can be rotated` });
    if (meta.rotatedTo !== undefined) throw new GerbangError("MALFORMED_REQUEST", { message: `key ${id} was already rotated to ${meta.rotatedTo}` });
    const remaining = row.expiresAt === null ? undefined : Math.floor((row.expiresAt.getTime() - Date.now()) / 1000);
    // A successor never outlives its predecessor's expiry; one about to expire is not worth rotating.
    if (remaining !== undefined && remaining < 1) throw new GerbangError("MALFORMED_REQUEST", { message: `key ${id} is about to expire; issue a new key instead` });
    // Claim the row first (compare-and-set on its metadata): two concurrent rotations cannot both issue a successor.
    const claimed = await this.prisma.apikey.updateMany({
      where: { id, enabled: true, metadata: row.metadata },
      data: { updatedAt: new Date(), metadata: JSON.stringify({ ...meta, rotatedTo: "pending" }) },
    });
    if (claimed.count !== 1) throw new GerbangError("MALFORMED_REQUEST", { message: `key ${id} changed while rotating it; try again` });
    const created = await (await this.authApi()).createApiKey({
      body: {
        userId: row.referenceId,
        name: row.name ?? "rotated",
        metadata: { tier: meta.tier, scopes: meta.scopes, rotatedFrom: id },
        ...(remaining === undefined ? {} : { expiresIn: remaining }),
      },
    });
    const graceEnds = new Date(Date.now() + graceSec * 1000);
    const deadline = row.expiresAt !== null && row.expiresAt < graceEnds ? row.expiresAt : graceEnds;
    const linked = await this.prisma.apikey.updateMany({
      where: { id, enabled: true },
      data: { expiresAt: deadline, updatedAt: new Date(), metadata: JSON.stringify({ ...meta, rotatedTo: created.id }) },
    });
    if (linked.count !== 1) {
      // Revoked meanwhile: the successor must not outlive the revocation.
      await this.prisma.apikey.update({ where: { id: created.id }, data: { enabled: false, updatedAt: new Date() } });
      throw new GerbangError("MALFORMED_REQUEST", { message: `key ${id} was revoked while rotating it` });
    }
    await this.options.bus?.publish({ kind: "key", id });
    const fresh = await this.find(created.id, {});
    const previous = await this.find(id, {});
    if (fresh === null || previous === null) throw new GerbangError("INTERNAL_ERROR");
    return { key: created.key, view: fresh, previous };
  }

  private async row(id: string, access: Prisma.ApikeyWhereInput): Promise<Row> {
    const row = await this.prisma.apikey.findFirst({ where: { AND: [access, { id }] }, select: VIEW_SELECT });
    if (row === null) throw new GerbangError("KEY_NOT_FOUND");
    return row;
  }

  private checkNew(input: NewKey): KeyMetadata {
    const bad = (message: string): GerbangError => new GerbangError("MALFORMED_REQUEST", { message });
    if (!/^[\p{L}\p{N} ._:-]{1,64}$/u.test(input.name)) throw bad("name: 1-64 letters, digits, spaces or . _ : -");
    if (!this.options.tiers.includes(input.tier)) throw bad(`tier: unknown tier ${input.tier} (known: ${this.options.tiers.join(", ")})`);
    const declared = this.options.scopes();
    if (input.scopes.length === 0) throw bad(`scopes: at least one is required (declared: ${[...declared].join(", ")})`);
    const unknown = input.scopes.find((s) => !declared.has(s));
    if (unknown !== undefined) throw bad(`scopes: unknown scope ${unknown} (declared: ${[...declared].join(", ")})`);
    if (input.expiresInSec !== undefined && (input.expiresInSec < 1 || input.expiresInSec > this.options.maxExpiresInDays * 86400)) {
      throw bad(`expiresIn: between 1 second and ${this.options.maxExpiresInDays} days`);
    }
    return { tier: input.tier, scopes: [...new Set(input.scopes)].sort() };
  }
}

function toView(row: Row): KeyView {
  const meta = parseKeyMetadata(row.metadata);
  const now = Date.now();
  const status = row.enabled === false || meta === null || meta.revokedAt !== undefined ? "revoked" : row.expiresAt !== null && row.expiresAt.getTime() <= now ? "expired" : "active";
  return {
    id: row.id,
    name: row.name,
    start: row.start,
    ownerId: row.referenceId,
    ownerEmail: row.user.email,
    tier: meta?.tier ?? "",
    scopes: meta?.scopes ?? [],
    status,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    lastUsedAt: row.lastRequest?.toISOString() ?? null,
    rotatedTo: meta?.rotatedTo ?? null,
    rotatedFrom: meta?.rotatedFrom ?? null,
  };
}
