import { hash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";

/**
 * Key format: `gb_live_` + 43 base62 characters (256 random bits) + 6 base62 characters of
 * CRC-32 over everything before them. The prefix makes leaked keys greppable by secret scanners;
 * the checksum lets the gateway (and a scanner) reject a mistyped or invented key without a lookup.
 */
export const API_KEY_PREFIX = "gb_live_";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
export const API_KEY_LENGTH = API_KEY_PREFIX.length + BODY_LENGTH + CHECKSUM_LENGTH;
const SHAPE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

function base62(value: bigint, length: number): string {
  let out = "";
  let rest = value;
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  return out;
}

/** base62 of a CRC-32 (below 2^32: exact in a double, no BigInt on the request path). */
function checksumOf(keyWithoutChecksum: string): string {
  let rest = crc32(keyWithoutChecksum);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

export function generateApiKey(): string {
  const body = base62(BigInt(`0x${randomBytes(32).toString("hex")}`), BODY_LENGTH);
  const head = `${API_KEY_PREFIX}${body}`;
  return `${head}${checksumOf(head)}`;
}

export type KeyShapeProblem = "WRONG_PREFIX" | "MALFORMED" | "BAD_CHECKSUM";

/** Cheap structural check before any lookup. The checksum is not a secret, so === is fine here. */
export function checkApiKeyShape(key: string): KeyShapeProblem | null {
  if (!key.startsWith(API_KEY_PREFIX)) return "WRONG_PREFIX";
  if (!SHAPE.test(key)) return "MALFORMED";
  const head = key.slice(0, -CHECKSUM_LENGTH);
  return checksumOf(head) === key.slice(-CHECKSUM_LENGTH) ? null : "BAD_CHECKSUM";
}

/** What the database stores: SHA-256, base64url, the same digest Better Auth's API key plugin writes. */
export function hashApiKey(key: string): string {
  // crypto.hash: one call into OpenSSL, about a third of createHash().update().digest().
  return hash("sha256", key, "base64url");
}
