import type { UpstreamConfig } from "../config/schema.ts";
import type { AttributeResolver, ResolveResult } from "./attributeResolver.ts";
import type { HttpResolver } from "./httpResolver.ts";
import { PrismaResolver, type PrismaResolverOptions } from "./prismaResolver.ts";

/**
 * The resolver of each upstream's subjects: the upstream's Prisma resolver for the subjects it is
 * configured with, the HTTP resolver contract for everything else.
 */
export class UpstreamResolvers implements AttributeResolver {
  private readonly http: HttpResolver;
  private readonly prisma: ReadonlyMap<string, PrismaResolver>;

  private constructor(http: HttpResolver, prisma: ReadonlyMap<string, PrismaResolver>) {
    this.http = http;
    this.prisma = prisma;
  }

  /** Opens every configured Prisma resolver (each checks its role and subjects); one failing fails all. */
  static async open(upstreams: readonly UpstreamConfig[], http: HttpResolver, options: PrismaResolverOptions): Promise<UpstreamResolvers> {
    const opened = new Map<string, PrismaResolver>();
    try {
      for (const upstream of upstreams) {
        if (upstream.resolver?.prisma !== undefined) opened.set(upstream.name, await PrismaResolver.open(upstream.name, upstream.resolver.prisma, options));
      }
    } catch (error) {
      await Promise.all([...opened.values()].map((r) => r.close()));
      throw error;
    }
    return new UpstreamResolvers(http, opened);
  }

  private resolverFor(upstream: UpstreamConfig, subject: string): AttributeResolver {
    const prisma = this.prisma.get(upstream.name);
    return prisma !== undefined && prisma.handles(subject) ? prisma : this.http;
  }

  resolve(upstream: UpstreamConfig, subject: string, id: string, options?: { fresh?: boolean }): Promise<ResolveResult> {
    return this.resolverFor(upstream, subject).resolve(upstream, subject, id, options);
  }

  invalidate(upstream: UpstreamConfig, subject: string, id: string): void {
    this.resolverFor(upstream, subject).invalidate(upstream, subject, id);
  }

  /** Read by the metrics at scrape time: every resolver's cache together. */
  get stats(): { hits: number; misses: number } {
    const all = [this.http.stats, ...[...this.prisma.values()].map((r) => r.stats)];
    return { hits: all.reduce((n, s) => n + s.hits, 0), misses: all.reduce((n, s) => n + s.misses, 0) };
  }

  /** One readiness check per business database (not critical: only resolver endpoints need it). */
  readiness(): Array<{ name: string; critical: false; check: () => Promise<void> }> {
    return [...this.prisma].map(([name, resolver]) => ({ name: `resolver:${name}`, critical: false as const, check: () => resolver.ping() }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.prisma.values()].map((r) => r.close()));
  }
}
