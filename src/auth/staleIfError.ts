/** How an instance is verifying credentials right now, for /readyz and the logs. */
export interface CredentialMode {
  /** fresh: the database answers; stale-if-error: it does not, and known credentials are served from cache
   * within the bound; ttl-only: it does not, and without the invalidation channel the cache TTL alone applies. */
  mode: "fresh" | "stale-if-error" | "ttl-only";
  /** When the database stopped answering (ISO time), or null. */
  since: string | null;
  staleIfErrorMs: number;
}

export interface StaleIfErrorOptions {
  /** auth.staleIfErrorMs: how long after its last verification a known credential may be served while the database is down. */
  boundMs: number;
  /** Whether revocations reach this instance right now (the Redis invalidation channel is subscribed). */
  channelConnected: () => boolean;
  log: (msg: string) => void;
  /** After a failed lookup, known credentials skip the database for this long instead of each waiting for it. */
  retryAfterMs?: number;
}

/**
 * One model for the session and API-key caches (stale-if-error, RFC 5861's idea). A cached answer is
 * fresh for its TTL. Past it, the database is asked again; if it cannot be reached, the cached answer
 * is still served, up to `boundMs` after the credential was last verified, but only while the
 * invalidation channel is connected: a revocation made anywhere still reaches this cache, so the TTL
 * no longer buys safety. Without the channel, the TTL alone bounds a cached answer. A credential not
 * seen before the outage is never served; the caller answers 503.
 */
export class StaleIfError {
  private failingSince: number | null = null;
  private lastFailure = 0;
  private readonly retryAfterMs: number;

  private readonly options: StaleIfErrorOptions;

  constructor(options: StaleIfErrorOptions) {
    this.options = options;
    this.retryAfterMs = options.retryAfterMs ?? 1000;
  }

  /** May an answer last verified at `verifiedAt` be served now, the database being unreachable? */
  allows(verifiedAt: number, now: number): boolean {
    return this.options.boundMs > 0 && now - verifiedAt <= this.options.boundMs && this.options.channelConnected();
  }

  /** The database failed a moment ago: a known credential that may be served stale need not wait for it again. */
  skipLookup(now: number): boolean {
    return this.failingSince !== null && now - this.lastFailure < this.retryAfterMs;
  }

  failed(now: number): void {
    this.lastFailure = now;
    if (this.failingSince !== null) return;
    this.failingSince = now;
    const mode = this.mode().mode;
    this.options.log(
      mode === "stale-if-error"
        ? `credentials: database unreachable; serving known sessions and keys from cache for up to ${this.options.boundMs} ms after their last verification (stale-if-error)`
        : "credentials: database unreachable and no invalidation channel; cached sessions and keys only within their TTL",
    );
  }

  recovered(now: number): void {
    if (this.failingSince === null) return;
    this.options.log(`credentials: database reachable again after ${now - this.failingSince} ms`);
    this.failingSince = null;
  }

  mode(): CredentialMode {
    const since = this.failingSince === null ? null : new Date(this.failingSince).toISOString();
    const staleIfErrorMs = this.options.boundMs;
    if (this.failingSince === null) return { mode: "fresh", since: null, staleIfErrorMs };
    return { mode: this.options.boundMs > 0 && this.options.channelConnected() ? "stale-if-error" : "ttl-only", since, staleIfErrorMs };
  }
}
