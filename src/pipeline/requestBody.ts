import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { EndpointSpec } from "../policy/schema.ts";
import { GerbangError } from "../errors/catalogue.ts";

const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(?:;|$)/i;

/**
 * Whether the gateway reads a proxied body whole before deciding: when the endpoint's policy reads
 * it, and for form bodies (a `_method` field in one is refused, and that takes reading it). Every
 * other body streams to the upstream as it arrives.
 */
export function bodyIsRead(spec: EndpointSpec | undefined, contentType: string | string[] | undefined): boolean {
  if (spec !== undefined && (spec.resource?.from === "body" || spec.fields === "body")) return true;
  return typeof contentType === "string" && FORM_TYPE.test(contentType);
}

/** The length a body declares: Content-Length, unless Transfer-Encoding frames it instead. */
export function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const length = headers["content-length"];
  return headers["transfer-encoding"] === undefined && typeof length === "string" ? Number(length) : undefined;
}

/** The bytes a streamed body holds in the gateway, counted against the shared budgets; charge throws OVERLOADED when they are spent. */
export interface BodyBudget {
  charge(bytes: number): void;
  release(bytes: number): void;
}

/** What failed a streamed body: the client's side (too large, over the budget, the client gone), never the upstream's. */
export class StreamedBodyError extends Error {
  readonly refusal: GerbangError | null;

  /** `refusal`: the answer the client gets; null when the client has gone and nobody is left to answer. */
  constructor(refusal: GerbangError | null, cause?: unknown) {
    super(refusal === null ? "the client's body broke off" : refusal.message, cause === undefined ? undefined : { cause });
    this.refusal = refusal;
  }
}

/**
 * A client's body as undici sends it on: part by part as they arrive, cut at `limit` bytes. undici
 * asks for the next part once the previous one was written to the upstream's connection, so a part
 * is charged to the budget from its arrival until then. When this fails undici aborts the upstream's
 * request: the upstream sees a body that stops short, never a complete, truncated one.
 */
export async function* meteredBody(source: Readable, limit: number, budget: BodyBudget): AsyncGenerator<Buffer> {
  let received = 0;
  // Not destroyed on the way out: the client must still be able to read the 413.
  const parts = source.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<Buffer | string>;
  for (;;) {
    let next: IteratorResult<Buffer | string>;
    try {
      next = await parts.next();
    } catch (error) {
      throw new StreamedBodyError(null, error);
    }
    if (next.done === true) return;
    const part = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
    received += part.length;
    if (received > limit) throw new StreamedBodyError(new GerbangError("PAYLOAD_TOO_LARGE", { headers: { connection: "close" } }));
    try {
      budget.charge(part.length);
    } catch (error) {
      throw new StreamedBodyError(error instanceof GerbangError ? error : new GerbangError("OVERLOADED", { reason: "BODY_BUDGET" }));
    }
    try {
      yield part;
    } finally {
      budget.release(part.length);
    }
  }
}

/**
 * Reads a body whole, at most `limit` bytes (413 past it, before the rest is read) and exactly its
 * declared length (400 otherwise), as Fastify's own parser would.
 */
export function readWholeBody(payload: Readable, declared: number | undefined, limit: number, done: (error: Error | null, body?: Buffer) => void): void {
  if (declared !== undefined && declared > limit) {
    done(new GerbangError("PAYLOAD_TOO_LARGE"));
    return;
  }
  const parts: Buffer[] = [];
  let received = 0;
  const finish = (error: Error | null, body?: Buffer): void => {
    payload.removeListener("data", onData);
    payload.removeListener("end", onEnd);
    payload.removeListener("error", onError);
    done(error, body);
  };
  const onData = (part: Buffer | string): void => {
    const bytes = typeof part === "string" ? Buffer.from(part) : part;
    received += bytes.length;
    if (received > limit) {
      finish(new GerbangError("PAYLOAD_TOO_LARGE"));
      return;
    }
    parts.push(bytes);
  };
  const onEnd = (): void => {
    if (declared !== undefined && received !== declared) finish(new GerbangError("MALFORMED_REQUEST", { reason: "CONTENT_LENGTH_MISMATCH" }));
    else finish(null, Buffer.concat(parts, received));
  };
  const onError = (error: Error): void => finish(new GerbangError("MALFORMED_REQUEST", { reason: "BODY_ABORTED", message: error.message === "aborted" ? "The request body broke off." : "The request body could not be read." }));
  payload.on("data", onData);
  payload.on("end", onEnd);
  payload.on("error", onError);
  payload.resume();
}
