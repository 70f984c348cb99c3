import { hash } from "node:crypto";
import type { Auth } from "./createAuth.ts";
import { rolesForCredential, rolesFromField, type Principal } from "./principal.ts";
import type { AuthnResult } from "./authenticators/authenticator.ts";
import { SESSION_COOKIE_NAMES } from "./authenticators/sessionCookieAuthenticator.ts";
import type { StaleIfError } from "./staleIfError.ts";

interface Entry {
  result: Extract<AuthnResult, { kind: "authenticated" }>;
  /** Fresh until then (auth.sessionCacheTtlMs). */
  until: number;
  /** Last verified against the database; the session's own expiry. Bound stale-if-error serving. */
  verifiedAt: number;
  expiresAt: number;
  /** Hash of the session token inside the credential: the cookie and the bearer spelling of one session share it. */
  token: string;
}

/**
 * Resolves a session credential to a principal through Better Auth, remembering positive answers
 * for `ttlMs` so the proxy path does not query the database per request. Sign-out through this
 * instance forgets the session at once, whichever spelling (cookie or bearer) it was cached under, admin changes to a user arrive through the invalidation bus
 * (forgetUser), and the TTL bounds every other revocation made elsewhere.
 */
export class SessionResolver {
  private readonly cache = new Map<string, Entry>();
  /** When a token or a user was last forgotten: a lookup that started before must not cache its answer. */
  private readonly forgotten = new Map<string, number>();

  private readonly auth: Auth;
  private readonly ttlMs: number;
  private readonly staleIfError: StaleIfError | null;
  private readonly maxEntries: number;
  private readonly needSecondFactor: ReadonlySet<string>;

  constructor(
    auth: Auth,
    ttlMs: number,
    /** Null: past its TTL a cached session is never served (no invalidation channel to keep it honest). */
    staleIfError: StaleIfError | null = null,
    maxEntries: number = 50_000,
    /** auth.twoFactor.requiredForRoles: withheld from sessions signed in without a second factor. */
    needSecondFactor: ReadonlySet<string> = new Set(),
  ) {
    this.needSecondFactor = needSecondFactor;
    this.auth = auth;
    this.ttlMs = ttlMs;
    this.staleIfError = staleIfError;
    this.maxEntries = maxEntries;
  }

  /** Sessions cached now (at most auth.sessionCacheMaxEntries). */
  get size(): number {
    return this.cache.size;
  }

  /** The cache key never contains the credential itself. */
  static keyOf(headers: Record<string, string>): string {
    return hash("sha256", JSON.stringify(headers), "base64url");
  }

  /**
   * The session token a credential carries: `Bearer <token>.<signature>` and the cookie value
   * `<token>.<signature>` (URL-encoded) name the same session.
   */
  static tokenOf(headers: Record<string, string>): string {
    const raw = headers.authorization?.replace(/^Bearer +/i, "") ?? headers.cookie?.slice(headers.cookie.indexOf("=") + 1) ?? "";
    let decoded = raw;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // not encoded
    }
    return hash("sha256", decoded.split(".")[0] ?? "", "base64url");
  }

  /** Read by the metrics at scrape time. */
  readonly stats = { hits: 0, misses: 0 };

  async resolve(headers: Record<string, string>, options: { refresh?: boolean } = {}): Promise<AuthnResult> {
    const key = SessionResolver.keyOf(headers);
    const now = Date.now();
    let hit = this.cache.get(key);
    if (hit !== undefined && hit.until > now) {
      this.stats.hits += 1;
      return hit.result;
    }
    this.stats.misses += 1;
    // Past its TTL an entry is kept only as a stale-if-error fallback, never past the session's expiry.
    if (hit !== undefined && (hit.expiresAt <= now || !(this.staleIfError?.allows(hit.verifiedAt, now) ?? false))) {
      this.cache.delete(key);
      hit = undefined;
    }
    if (hit !== undefined && this.staleIfError?.skipLookup(now) === true) return hit.result;

    const startedAt = now;
    // Better Auth extends the session here (sliding refresh) and says so with a renewed cookie.
    let answer: Awaited<ReturnType<typeof this.lookup>>;
    try {
      answer = await this.lookup(headers, options.refresh !== false);
    } catch (error) {
      this.staleIfError?.failed(Date.now());
      // Re-checked after the wait: a revocation may have arrived meanwhile.
      const still = this.cache.get(key);
      if (still !== undefined && this.staleIfError?.allows(still.verifiedAt, Date.now()) === true) return still.result;
      // Otherwise the error propagates: the stage turns it into 503, never into anonymous.
      throw error;
    }
    this.staleIfError?.recovered(Date.now());
    const { headers: answerHeaders, response: found } = answer;
    if (found === null) {
      this.cache.delete(key);
      return { kind: "rejected", reason: "session not found, expired or revoked" };
    }
    const user = found.user as typeof found.user & { role?: string | null; banned?: boolean | null; region?: string | null; deletedAt?: Date | string | null };
    const secondFactor = (found.session as typeof found.session & { secondFactor?: boolean | null }).secondFactor === true;
    const impersonatedBy = (found.session as typeof found.session & { impersonatedBy?: string | null }).impersonatedBy;
    if (user.banned === true || (user.deletedAt !== null && user.deletedAt !== undefined)) {
      this.cache.delete(key);
      return { kind: "rejected", reason: user.banned === true ? "user is banned" : "user is deleted" };
    }

    const principal: Principal = {
      userId: user.id,
      ...rolesForCredential(rolesFromField(user.role), this.needSecondFactor, secondFactor),
      authMethod: "session",
      attributes: { id: user.id, email: user.email, region: user.region ?? undefined },
      sessionId: found.session.id,
      signedInAt: new Date(found.session.createdAt).getTime(),
      ...(typeof impersonatedBy === "string" && impersonatedBy !== "" ? { impersonatedBy } : {}),
    };
    const result = { kind: "authenticated" as const, principal, credentialKey: key };
    const renewed = answerHeaders.getSetCookie().filter((c) => SESSION_COOKIE_NAMES.some((n) => c.startsWith(`${n}=`)));
    const expiresAt = new Date(found.session.expiresAt).getTime();
    const token = SessionResolver.tokenOf(headers);
    const forgottenAt = Math.max(this.forgotten.get(`t:${token}`) ?? 0, this.forgotten.get(`u:${user.id}`) ?? 0, this.forgotten.get("all") ?? 0);
    if (this.ttlMs > 0 && forgottenAt < startedAt) {
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value ?? "");
      this.cache.set(key, { result, until: Math.min(now + this.ttlMs, expiresAt), verifiedAt: now, expiresAt, token });
    }
    // Only this answer carries the renewed cookie; cached copies must not replay it.
    return renewed.length > 0 ? { ...result, refreshCookies: renewed } : result;
  }

  private lookup(headers: Record<string, string>, refresh: boolean) {
    return this.auth.api.getSession({ headers: new Headers(headers), query: { disableCookieCache: true, ...(refresh ? {} : { disableRefresh: true }) }, returnHeaders: true });
  }

  private remember(what: string): void {
    const now = Date.now();
    // Only lookups in flight care; a minute is far longer than any lookup.
    if (this.forgotten.size >= 10_000) for (const [k, at] of this.forgotten) if (at < now - 60_000) this.forgotten.delete(k);
    this.forgotten.set(what, now);
  }

  /** Sign-out: forgets every cached spelling of the session the credential names, not only this one. */
  forget(headers: Record<string, string>): void {
    const token = SessionResolver.tokenOf(headers);
    this.remember(`t:${token}`);
    const sessionIds = new Set<string>();
    for (const [key, entry] of this.cache) {
      if (entry.token !== token) continue;
      if (entry.result.principal.sessionId !== undefined) sessionIds.add(entry.result.principal.sessionId);
      this.cache.delete(key);
    }
    if (sessionIds.size === 0) return;
    for (const [key, entry] of this.cache) if (entry.result.principal.sessionId !== undefined && sessionIds.has(entry.result.principal.sessionId)) this.cache.delete(key);
  }

  forgetUser(userId: string): void {
    this.remember(`u:${userId}`);
    for (const [key, entry] of this.cache) if (entry.result.principal.userId === userId) this.cache.delete(key);
  }

  forgetAll(): void {
    this.remember("all");
    this.cache.clear();
  }
}
