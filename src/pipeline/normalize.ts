import type { IncomingMessage } from "node:http";
import { normalizeTarget, type NormalizeRejectReason } from "./normalizeTarget.ts";

const REJECTED = Symbol("gerbang.rejectedTarget");
type MarkedRequest = IncomingMessage & { [REJECTED]?: NormalizeRejectReason };

/** Where a rejected target is routed, so that a root hook answers it before anything else runs. */
export const REJECTED_TARGET_URL = "/__gerbang/rejected-target";

/**
 * Stage 1, before routing (Fastify's rewriteUrl): every route, the auth routes and the proxy alike,
 * sees only the canonical target, so the path that was routed and authorized is the path forwarded.
 */
export function createNormalizer(caseInsensitive: boolean): (req: IncomingMessage) => string {
  return (req) => {
    const result = normalizeTarget(req.url ?? "", { caseInsensitive });
    if (result.ok) return result.path + result.query;
    (req as MarkedRequest)[REJECTED] = result.reason;
    return REJECTED_TARGET_URL;
  };
}

export function rejectedTargetReason(req: IncomingMessage): NormalizeRejectReason | undefined {
  return (req as MarkedRequest)[REJECTED];
}

export function splitTarget(url: string): { path: string; query: string } {
  const q = url.indexOf("?");
  return q < 0 ? { path: url, query: "" } : { path: url.slice(0, q), query: url.slice(q) };
}
