import { GerbangError } from "../errors/catalogue.ts";
import { queryParams } from "./queryParams.ts";

/**
 * Parameters that make frameworks (Rails, Laravel, Express method-override, Symfony) execute another
 * method than the one the gateway authorized: `POST /api/orders?_method=DELETE` is a DELETE upstream.
 * The gateway cannot know whether an upstream honours them, so it refuses them (headers of the same
 * meaning are stripped before forwarding, see upstreamHeaders).
 */
const OVERRIDE_PARAM = /^(?:_method|x[-_]http[-_]method(?:[-_]override)?|x[-_]method[-_]override)$/i;

/** Does a query string (with its `?`) or an urlencoded body carry a method-override parameter? */
export function hasMethodOverride(params: string): boolean {
  for (const [name] of queryParams(params)) if (OVERRIDE_PARAM.test(name.trim())) return true;
  return false;
}

/** The one refusal for a method override, wherever it was found (query or form body). */
export function methodOverrideRefused(): GerbangError {
  return new GerbangError("MALFORMED_REQUEST", { reason: "METHOD_OVERRIDE", message: "Method-override parameters are not accepted." });
}

const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(?:;|$)/i;

/** The body of an urlencoded form carries a method override (multipart bodies are not inspected). */
export function formHasMethodOverride(contentType: string | undefined, body: unknown): boolean {
  if (typeof contentType !== "string" || !FORM_TYPE.test(contentType) || !(body instanceof Buffer)) return false;
  return hasMethodOverride(body.toString("latin1"));
}
