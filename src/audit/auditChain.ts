import { hash } from "node:crypto";

/**
 * What an audit event says. Every field is part of the hashed content (docs/audit.md), so the
 * writer, the verifier and a third party recompute the same hash from a row.
 */
export interface AuditEventContent {
  at: Date;
  action: string;
  requestId: string | null;
  traceId: string | null;
  method: string | null;
  path: string | null;
  principalId: string | null;
  keyId: string | null;
  authMethod: string;
  roles: string;
  clientIp: string | null;
  target: string | null;
  allowed: boolean;
  reason: string;
  ruleId: string | null;
  policyVersion: string;
  upstream: string | null;
  status: number | null;
  endpointId: string | null;
  /** Comma-separated; set on a field denial. */
  blockedFields: string | null;
  /** What a decision read (see recordDecision), bounded. */
  decisionInput: JsonValue | null;
  /** Bounded, ids only: never a secret or personal data. */
  details: JsonValue | null;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ChainLink {
  instance: string;
  seq: bigint;
  prevHash: string;
  hash: string;
}

/** The predecessor of every chain's first row. */
export const GENESIS_HASH = "0".repeat(64);
export const CHAIN_FORMAT = 1;

/**
 * PostgreSQL stores neither NUL nor lone surrogates (text and jsonb refuse them; the driver turns a
 * lone surrogate into U+FFFD): strings are made storable before they are hashed, so the row read
 * back hashes to the same value. A client-chosen body field name must never poison a batch.
 */
export const storable = (text: string): string => (text.isWellFormed() && !text.includes("\u0000") ? text : text.toWellFormed().replaceAll("\u0000", "\uFFFD"));

/** Storable strings throughout, non-finite numbers as null (JSON has none). */
export function storableJson(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return storable(value);
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map(storableJson);
  if (typeof value === "object") {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[storable(k)] = storableJson(v);
    return out;
  }
  return storable(String(value));
}

/** The same value with object keys sorted (by UTF-16 code units) at every depth. */
function sortedKeys(value: JsonValue): JsonValue {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(sortedKeys);
  const out: Record<string, JsonValue> = {};
  for (const k of Object.keys(value).sort()) out[k] = sortedKeys(value[k] ?? null);
  return out;
}

/** JSON with object keys sorted at every depth and no whitespace (JSON.stringify keeps insertion order). */
export const canonicalJson = (value: JsonValue): string => JSON.stringify(sortedKeys(value));

/**
 * The hashed text of a row: its chain and every content field, in a fixed order. Not its seq: the
 * links alone fix the order (seq is for reading it in order and for counting a gap), so renumbered
 * rows are told apart by their links, not reported as edited.
 */
export function canonicalEvent(instance: string, e: AuditEventContent): string {
  // One native JSON.stringify over primitives and key-sorted copies of the two objects.
  return JSON.stringify([
    CHAIN_FORMAT,
    instance,
    e.at.toISOString(),
    e.action,
    e.requestId,
    e.traceId,
    e.method,
    e.path,
    e.principalId,
    e.keyId,
    e.authMethod,
    e.roles,
    e.clientIp,
    e.target,
    e.allowed,
    e.reason,
    e.ruleId,
    e.policyVersion,
    e.upstream,
    e.status,
    e.endpointId,
    e.blockedFields,
    sortedKeys(e.decisionInput),
    sortedKeys(e.details),
  ]);
}

/** SHA-256 (hex) of the predecessor's hash, a newline and the canonical event. */
export function chainHash(prevHash: string, canonical: string): string {
  return hash("sha256", `${prevHash}\n${canonical}`, "hex");
}

/** The canonical payload a checkpoint signs. */
export const checkpointPayload = (c: { instance: string; seq: bigint; hash: string; kind: string; at: Date }): string =>
  canonicalJson([CHAIN_FORMAT, "checkpoint", c.instance, c.seq.toString(), c.hash, c.kind, c.at.toISOString()]);
