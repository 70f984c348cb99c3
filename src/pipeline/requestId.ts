import { randomFillSync } from "node:crypto";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/** Random bytes drawn 4 KiB at a time: one syscall per 400 ids instead of one per id. */
const pool = Buffer.alloc(4096);
let offset = pool.length;
/** The time part of the last id, reused within the same millisecond. */
let lastMs = -1;
let msPrefix = "";

/**
 * A request id: a UUID version 7 (RFC 9562), the time in milliseconds first and 74 random bits.
 * Why not v4: every audited request inserts its id into a B-tree index, and ids that grow with time
 * land at its right edge instead of on a random page (PostgreSQL spends less than half the CPU per
 * row). The time it shows is the request's, which its answer already says.
 */
export function requestId(now: number = Date.now()): string {
  if (offset + 10 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const r = offset;
  offset += 10;
  if (now !== lastMs) {
    const ms = now.toString(16).padStart(12, "0").slice(-12);
    lastMs = now;
    msPrefix = `${ms.slice(0, 8)}-${ms.slice(8)}-`;
  }
  const b = (i: number): string => HEX[pool[r + i] ?? 0] ?? "00";
  const version = HEX[((pool[r] ?? 0) & 0x0f) | 0x70] ?? "70";
  const variant = HEX[((pool[r + 2] ?? 0) & 0x3f) | 0x80] ?? "80";
  return `${msPrefix}${version}${b(1)}-${variant}${b(3)}-${b(4)}${b(5)}${b(6)}${b(7)}${b(8)}${b(9)}`;
}
