import type { FastifyReply, FastifyRequest } from "fastify";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { GerbangError } from "../errors/catalogue.ts";
import { maskRecords } from "../policy/maskFields.ts";
import type { EndpointSpec } from "../policy/schema.ts";
import type { Principal } from "../auth/principal.ts";
import type { AbilityCache } from "../policy/abilityCache.ts";

export const DEFAULT_MASK_MAX_BYTES = 1024 * 1024;

export type MaskRefusal = "TOO_LARGE" | "NOT_JSON" | "ENCODED" | "INVALID_JSON" | "NOT_RECORDS" | "PARTIAL" | "BODY_FAILED";
export type MaskSpec = NonNullable<EndpointSpec["response"]>;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
// Headers that describe the upstream's bytes, which the client no longer gets.
const OF_THE_ORIGINAL = ["content-length", "etag", "content-md5", "digest", "content-digest", "repr-digest", "accept-ranges", "content-range", "last-modified"];

/** Which answers a masked endpoint masks: a 2xx with a body. Errors and empty answers pass as they are. */
export function masksAnswer(method: string, statusCode: number): boolean {
  return method !== "HEAD" && statusCode >= 200 && statusCode < 300 && statusCode !== 204 && statusCode !== 205;
}

/**
 * The request to a masked endpoint's upstream: an answer the gateway can read whole. No compression,
 * no ranges, no conditional requests (a 304 would tell the client its earlier, unmasked-by-us copy holds).
 */
export function forMasking(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const { range: _range, "if-range": _ifRange, "if-none-match": _inm, "if-modified-since": _ims, ...rest } = headers;
  return { ...rest, "accept-encoding": "identity" };
}

/** Drops an answer's body unread; an error after destroy must not reach the process. */
function discard(stream: Readable): void {
  stream.on("error", () => undefined);
  stream.destroy();
}

async function readJson(statusCode: number, headers: IncomingHttpHeaders, stream: Readable, maxBytes: number): Promise<{ ok: true; json: unknown } | { ok: false; reason: MaskRefusal }> {
  const refuse = (reason: MaskRefusal): { ok: false; reason: MaskRefusal } => {
    discard(stream);
    return { ok: false, reason };
  };
  if (statusCode === 206) return refuse("PARTIAL");
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
  try {
    return { ok: true, json: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks))) };
  } catch {
    return { ok: false, reason: "INVALID_JSON" };
  }
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
  const { principal, abilities } = context;
  const own = abilities.get(principal.roles).ability;
  const scope = principal.key === undefined ? null : abilities.forScopes(principal.key.scopes).ability;
  const masked = maskRecords(own, scope, principal.attributes, spec.at === undefined ? { subject } : { subject, at: spec.at }, read.json);
  if (!masked.ok) return refused(masked.reason);
  request.gerbang.masked = { removedFields: masked.removedFields, removedRecords: masked.removedRecords };
  const headers: IncomingHttpHeaders = { ...answer.headers };
  for (const name of OF_THE_ORIGINAL) delete headers[name];
  // What a caller sees depends on who they are: no shared or stored copy may serve another caller.
  headers["cache-control"] = "no-store";
  headers["content-type"] = "application/json; charset=utf-8";
  return reply.code(answer.statusCode).headers(headers).send(JSON.stringify(masked.body));
}
