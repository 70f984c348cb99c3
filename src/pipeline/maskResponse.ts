import type { FastifyReply, FastifyRequest } from "fastify";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { GerbangError } from "../errors/catalogue.ts";
import { discardBody } from "./discardBody.ts";
import { maskRecords, type MaskOutcome, type MaskTarget } from "../policy/maskFields.ts";
import type { PolicyAbility } from "../policy/compileAbility.ts";
import type { PrincipalAttributes } from "../policy/conditions.ts";
import type { EndpointSpec } from "../policy/schema.ts";
import type { Principal } from "../auth/principal.ts";
import type { AbilityCache } from "../policy/abilityCache.ts";

export const DEFAULT_MASK_MAX_BYTES = 1024 * 1024;

export type MaskRefusal = "TOO_LARGE" | "NOT_JSON" | "ENCODED" | "INVALID_JSON" | "NOT_RECORDS" | "PARTIAL" | "BODY_FAILED";
export type MaskSpec = NonNullable<EndpointSpec["response"]>;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
// Headers that describe the upstream's bytes, which the client no longer gets.
const OF_THE_ORIGINAL = ["content-length", "etag", "content-md5", "digest", "content-digest", "repr-digest", "accept-ranges", "content-range", "last-modified", "cdn-cache-control", "surrogate-control"];

/**
 * Which answers a masked endpoint masks: every one that has a body, whatever its status (a 409 may
 * carry the current record, a 422 an echo of it). Bodiless answers (HEAD, 1xx, 204, 205, 304) lose
 * only the headers that describe the unmasked bytes (see withoutOriginalHeaders).
 */
export function masksAnswer(method: string, statusCode: number): boolean {
  return method !== "HEAD" && statusCode >= 200 && statusCode !== 204 && statusCode !== 205 && statusCode !== 304;
}

/**
 * A masked endpoint's answer headers: none that describe or hash the upstream's bytes (a length, a
 * validator, a digest of the unmasked body would let a caller test guesses of hidden fields), and
 * never stored for another caller.
 */
export function withoutOriginalHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const kept: IncomingHttpHeaders = { ...headers };
  for (const name of OF_THE_ORIGINAL) delete kept[name];
  kept["cache-control"] = "no-store";
  return kept;
}

/**
 * The request to a masked endpoint's upstream: an answer the gateway can read whole. No compression,
 * no ranges, no conditional requests (a 304 would tell the client its earlier, unmasked-by-us copy holds).
 */
export function forMasking(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const { range: _range, "if-range": _ifRange, "if-none-match": _inm, "if-modified-since": _ims, ...rest } = headers;
  return { ...rest, "accept-encoding": "identity" };
}

async function readJson(statusCode: number, headers: IncomingHttpHeaders, stream: Readable, maxBytes: number): Promise<{ ok: true; json: unknown } | { ok: true; empty: true } | { ok: false; reason: MaskRefusal }> {
  const refuse = (reason: MaskRefusal): { ok: false; reason: MaskRefusal } => {
    discardBody(stream);
    return { ok: false, reason };
  };
  if (statusCode === 206) return refuse("PARTIAL");
  // An answer without a body has nothing to mask, whatever it declares it is.
  if (headers["content-length"] === "0") {
    discardBody(stream);
    return { ok: true, empty: true };
  }
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && String(encoding).trim().toLowerCase() !== "identity") return refuse("ENCODED");
  if (!JSON_TYPE.test(String(headers["content-type"] ?? ""))) return refuse("NOT_JSON");
  const declared = Number(headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) return refuse("TOO_LARGE");
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const bytes = chunk as Buffer;
      size += bytes.length;
      if (size > maxBytes) return refuse("TOO_LARGE");
      chunks.push(bytes);
    }
  } catch {
    return refuse("BODY_FAILED");
  }
  if (size === 0) return { ok: true, empty: true };
  try {
    return { ok: true, json: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks))) };
  } catch {
    return { ok: false, reason: "INVALID_JSON" };
  }
}

/** Records masked between two turns of the event loop: a long list must not hold up other requests. */
const RECORDS_PER_SLICE = 250;

/**
 * maskRecords over a long list a slice at a time (records are masked independently), yielding to
 * the event loop between slices; the same outcome as one call.
 */
async function maskInSlices(own: PolicyAbility, scope: PolicyAbility | null, principal: PrincipalAttributes, target: MaskTarget, body: unknown): Promise<MaskOutcome> {
  const isEnvelope = target.at !== undefined && typeof body === "object" && body !== null && !Array.isArray(body) && Object.hasOwn(body, target.at);
  const list = isEnvelope ? (body as Record<string, unknown>)[target.at ?? ""] : body;
  if (!Array.isArray(list) || list.length <= RECORDS_PER_SLICE) return maskRecords(own, scope, principal, target, body);
  const kept: unknown[] = [];
  let removedFields = 0;
  let removedRecords = 0;
  for (let start = 0; start < list.length; start += RECORDS_PER_SLICE) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    const slice = maskRecords(own, scope, principal, { subject: target.subject }, list.slice(start, start + RECORDS_PER_SLICE));
    if (!slice.ok) return slice;
    kept.push(...(slice.body as unknown[]));
    removedFields += slice.removedFields;
    removedRecords += slice.removedRecords;
  }
  const masked = isEnvelope ? Object.fromEntries(Object.entries(body as Record<string, unknown>).map(([k, v]) => [k, k === target.at ? kept : v])) : kept;
  return { ok: true, body: masked, removedFields, removedRecords };
}

export interface MaskedAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  stream: Readable;
}

/**
 * Sends an upstream's answer with the fields the caller may not read removed, or refuses it with
 * 502 RESPONSE_NOT_MASKABLE: never the unmasked body. The bytes are buffered up to the endpoint's
 * bound, so the answer's head goes out only once its masked body is known.
 */
export async function sendMasked(request: FastifyRequest, reply: FastifyReply, spec: MaskSpec, subject: string, answer: MaskedAnswer, context: { principal: Principal; abilities: AbilityCache }): Promise<FastifyReply> {
  const read = await readJson(answer.statusCode, answer.headers, answer.stream, spec.maxBytes ?? DEFAULT_MASK_MAX_BYTES);
  const refused = (reason: MaskRefusal): never => {
    request.log.warn({ reason, subject }, "upstream answer not maskable");
    throw new GerbangError("RESPONSE_NOT_MASKABLE", { reason });
  };
  if (!read.ok) return refused(read.reason);
  const headers = withoutOriginalHeaders(answer.headers);
  if ("empty" in read) return reply.code(answer.statusCode).headers(headers).send();
  const { principal, abilities } = context;
  const own = abilities.get(principal.roles).ability;
  const scope = principal.key === undefined ? null : abilities.forScopes(principal.key.scopes).ability;
  let text: string;
  try {
    const masked = await maskInSlices(own, scope, principal.attributes, spec.at === undefined ? { subject } : { subject, at: spec.at }, read.json);
    if (!masked.ok) return refused(masked.reason);
    request.gerbang.masked = { removedFields: masked.removedFields, removedRecords: masked.removedRecords };
    text = JSON.stringify(masked.body);
  } catch (error) {
    if (error instanceof GerbangError) throw error;
    // JSON nested past what the stack holds (in an envelope's other properties): not records to pass on.
    return refused("NOT_RECORDS");
  }
  headers["content-type"] = "application/json; charset=utf-8";
  return reply.code(answer.statusCode).headers(headers).send(text);
}
