import { GerbangError } from "../errors/catalogue.ts";
import type { UpstreamConfig } from "../config/schema.ts";

export type Attributes = Record<string, unknown>;
export type ResolveResult = { found: true; attributes: Attributes } | { found: false };

/** Where a policy's resource attributes come from when they live in upstream data. */
export interface AttributeResolver {
  /** `fresh` skips cached answers: writes are decided on current data. */
  resolve(upstream: UpstreamConfig, subject: string, id: string, options?: { fresh?: boolean }): Promise<ResolveResult>;
  /** Forgets a resource's attributes after a write through the gateway may have changed them. */
  invalidate(upstream: UpstreamConfig, subject: string, id: string): void;
}

export interface HttpResolverOptions {
  timeoutMs: number;
  cacheTtlMs: number;
  cacheMaxEntries: number;
  /** Headers that identify the gateway to the upstream (its own signed assertion). */
  headersFor?: (upstream: UpstreamConfig) => Promise<Record<string, string>>;
}

const MAX_BODY_BYTES = 64 * 1024;

function attributesUrl(upstream: UpstreamConfig, subject: string, id: string): string {
  // `id` comes from a canonical path segment: already percent-encoded, no "/" and no dot segment.
  return `${upstream.url.replace(/\/$/, "")}/.well-known/gerbang/attributes/${encodeURIComponent(subject)}/${id}`;
}

/**
 * The resolver contract: `GET <upstream>/.well-known/gerbang/attributes/<Subject>/<id>` answers
 * `200 {json object}` or `404`. Anything else is a failure (502/504): the gateway never decides on
 * attributes it could not read. Answers are cached briefly and concurrent lookups are coalesced.
 */
export class HttpResolver implements AttributeResolver {
  private readonly cache = new Map<string, { result: ResolveResult; until: number }>();
  private readonly inFlight = new Map<string, Promise<ResolveResult>>();

  private readonly options: HttpResolverOptions;

  constructor(options: HttpResolverOptions) {
    this.options = options;
  }

  /** Read by the metrics at scrape time. */
  readonly stats = { hits: 0, misses: 0 };

  async resolve(upstream: UpstreamConfig, subject: string, id: string, options: { fresh?: boolean } = {}): Promise<ResolveResult> {
    const url = attributesUrl(upstream, subject, id);
    const now = Date.now();
    const hit = this.cache.get(url);
    if (hit !== undefined && hit.until > now && options.fresh !== true) {
      this.stats.hits += 1;
      return hit.result;
    }
    this.stats.misses += 1;
    const pending = this.inFlight.get(url);
    if (pending !== undefined && options.fresh !== true) return pending;

    const lookup = this.fetchAttributes(upstream, url).finally(() => this.inFlight.delete(url));
    this.inFlight.set(url, lookup);
    const result = await lookup;
    if (this.options.cacheTtlMs > 0 && this.options.cacheMaxEntries > 0) {
      if (this.cache.size >= this.options.cacheMaxEntries) this.cache.delete(this.cache.keys().next().value ?? "");
      this.cache.set(url, { result, until: now + this.options.cacheTtlMs });
    }
    return result;
  }

  private async fetchAttributes(upstream: UpstreamConfig, url: string): Promise<ResolveResult> {
    let response: Response;
    try {
      const headers = { accept: "application/json", ...(await this.options.headersFor?.(upstream)) };
      response = await fetch(url, { headers, redirect: "error", signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      throw new GerbangError(timedOut ? "UPSTREAM_TIMEOUT" : "RESOLVER_FAILED");
    }
    if (response.status === 404) {
      await response.body?.cancel();
      return { found: false };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new GerbangError("RESOLVER_FAILED");
    }
    const text = await readCapped(response, MAX_BODY_BYTES);
    let attributes: unknown;
    try {
      attributes = JSON.parse(text);
    } catch {
      throw new GerbangError("RESOLVER_FAILED");
    }
    if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes)) throw new GerbangError("RESOLVER_FAILED");
    return { found: true, attributes: attributes as Attributes };
  }

  invalidate(upstream: UpstreamConfig, subject: string, id: string): void {
    this.cache.delete(attributesUrl(upstream, subject, id));
  }

  clear(): void {
    this.cache.clear();
  }
}

/** Reads at most `limit` bytes: a misbehaving upstream cannot make the gateway buffer more. */
async function readCapped(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new GerbangError("RESOLVER_FAILED");
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new GerbangError("RESOLVER_FAILED");
  }
}
