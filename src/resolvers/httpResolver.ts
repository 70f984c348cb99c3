import { GerbangError } from "../errors/catalogue.ts";
import type { UpstreamConfig } from "../config/schema.ts";
import { ResolverCache } from "./resolverCache.ts";
import type { Attributes, AttributeResolver, ResolveResult } from "./attributeResolver.ts";

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
  private readonly cache: ResolverCache;
  private readonly options: HttpResolverOptions;

  constructor(options: HttpResolverOptions) {
    this.options = options;
    this.cache = new ResolverCache(options);
  }

  /** Read by the metrics at scrape time. */
  get stats(): { hits: number; misses: number } {
    return this.cache.stats;
  }

  async resolve(upstream: UpstreamConfig, subject: string, id: string, options: { fresh?: boolean } = {}): Promise<ResolveResult> {
    const url = attributesUrl(upstream, subject, id);
    return this.cache.get(url, options.fresh === true, () => this.fetchAttributes(upstream, url));
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
    this.cache.forget(attributesUrl(upstream, subject, id));
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
