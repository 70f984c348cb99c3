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
