import { randomFillSync } from "node:crypto";

/** A W3C Trace Context position: the trace, this hop's span, the flags, and the vendors' tracestate. */
export interface TraceContext {
  traceId: string;
  spanId: string;
  flags: string;
  tracestate: string | null;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** The parent a `traceparent` names, or null for anything that is not a valid version-00 header. */
export function parseTraceparent(header: string | string[] | undefined): { traceId: string; parentId: string; flags: string } | null {
  if (typeof header !== "string" || header.length !== 55) return null;
  const match = TRACEPARENT.exec(header);
  if (match === null) return null;
  const [, traceId = "", parentId = "", flags = ""] = match;
  return traceId === ZERO_TRACE || parentId === ZERO_SPAN ? null : { traceId, parentId, flags };
}

/** tracestate as received (bounded by the spec's 32 members of at most 512 bytes in all), or null. */
export function boundedTracestate(header: string | string[] | undefined): string | null {
  if (typeof header !== "string" || header.length === 0 || header.length > 512 || !/^[\x20-\x7e]*$/.test(header)) return null;
  return header;
}

export const formatTraceparent = (c: { traceId: string; spanId: string; flags: string }): string => `00-${c.traceId}-${c.spanId}-${c.flags}`;

// Random bytes drawn 4 KiB at a time: one call per 170 requests rather than one per request.
const pool = Buffer.alloc(4080);
let offset = pool.length;

/** New ids when no SDK makes them: a trace of our own (unless the caller's is trusted) and this hop's span. */
export function newTraceIds(parentTraceId: string | null): { traceId: string; spanId: string } {
  if (offset + 24 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const traceId = parentTraceId ?? pool.toString("hex", offset, offset + 16);
  const spanId = pool.toString("hex", offset + 16, offset + 24);
  offset += 24;
  return { traceId, spanId };
}
