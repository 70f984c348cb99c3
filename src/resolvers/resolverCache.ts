import type { ResolveResult } from "./attributeResolver.ts";

export interface ResolverCacheOptions {
  cacheTtlMs: number;
  cacheMaxEntries: number;
}

/**
 * What every resolver shares: answers reused for `cacheTtlMs` (reads only), concurrent lookups of
 * one resource coalesced, and a resource forgotten after a write through the gateway.
 */
export class ResolverCache {
  private readonly cache = new Map<string, { result: ResolveResult; until: number }>();
  private readonly inFlight = new Map<string, Promise<ResolveResult>>();
  /**
   * Bumped by forget(): a lookup that started before a write through the gateway must not store
   * what it read before the write, or the stale answer would be served for a whole TTL.
   */
  private readonly generations = new Map<string, number>();
  private readonly options: ResolverCacheOptions;

  /** Read by the metrics at scrape time. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(options: ResolverCacheOptions) {
    this.options = options;
  }

  /** `fresh` skips cached and in-flight answers: writes are decided on current data. */
  async get(key: string, fresh: boolean, lookup: () => Promise<ResolveResult>): Promise<ResolveResult> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.until > now && !fresh) {
      this.stats.hits += 1;
      return hit.result;
    }
    this.stats.misses += 1;
    const pending = this.inFlight.get(key);
    if (pending !== undefined && !fresh) return pending;
    const generation = this.generations.get(key) ?? 0;
    let stale = false;
    const started = lookup().finally(() => {
      stale = (this.generations.get(key) ?? 0) !== generation;
      if (this.inFlight.get(key) === started) {
        this.inFlight.delete(key);
        this.generations.delete(key);
      }
    });
    this.inFlight.set(key, started);
    const result = await started;
    if (this.options.cacheTtlMs > 0 && this.options.cacheMaxEntries > 0 && !stale) {
      if (this.cache.size >= this.options.cacheMaxEntries) this.cache.delete(this.cache.keys().next().value ?? "");
      this.cache.set(key, { result, until: now + this.options.cacheTtlMs });
    }
    return result;
  }

  forget(key: string): void {
    this.cache.delete(key);
    // Only keys with a lookup under way need a generation; the map stays as small as the traffic.
    if (this.inFlight.has(key)) this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }

  clear(): void {
    this.cache.clear();
    for (const key of this.inFlight.keys()) this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }
}
