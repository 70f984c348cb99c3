import type { IncomingHttpHeaders } from "node:http";
import { setsGatewayCookie } from "../auth/gatewayCookies.ts";

/**
 * Response fields that belong to the gateway's own connection or answer, never to the upstream's:
 * hop-by-hop fields (RFC 9110 §7.6.1; the client sees the gateway's keep-alive, not an upstream's
 * `timeout=72`), obsolete framing and cookie fields, Alt-Svc (it would steer the client's later
 * connections to this origin), Clear-Site-Data, and the rate-limit fields the gateway computed for this caller.
 */
const GATEWAY_OWNED = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "http2-settings",
  // Clear-Site-Data: "cookies" would delete the gateway's cookies without naming them.
  "set-cookie2", "alt-svc", "clear-site-data",
  "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy", "ratelimit",
]);

/** Browsers keep about 180 cookies per site and evict the least recently used beyond that. */
export const MAX_SET_COOKIES = 32;

export interface ResponseHeaderOptions {
  /** Lower-case names removed as well (server.removeResponseHeaders, e.g. server, x-powered-by). */
  remove: ReadonlySet<string>;
}

const asList = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/**
 * The headers the client receives from an upstream answer. undici hands a field over as a string
 * when it came once and as an array when repeated, for every name, set-cookie included.
 */
export function sanitizeResponseHeaders(headers: IncomingHttpHeaders, options: ResponseHeaderOptions): IncomingHttpHeaders {
  const listed = new Set(asList(headers.connection).flatMap((v) => v.split(",")).map((v) => v.trim().toLowerCase()).filter(Boolean));
  const out: IncomingHttpHeaders = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (GATEWAY_OWNED.has(name) || name.startsWith("proxy-") || listed.has(name) || options.remove.has(name)) continue;
    if (name === "set-cookie") {
      // Session fixation or logout through a compromised service: no gateway cookie, under any spelling.
      // At most MAX_SET_COOKIES: a flood of cookies would make the browser evict others, the session's among them.
      const kept = asList(value).filter((line) => !setsGatewayCookie(line)).slice(0, MAX_SET_COOKIES);
      if (kept.length > 0) out["set-cookie"] = kept;
      continue;
    }
    if (name === "content-length" && Array.isArray(value)) {
      // The same length repeated is one length (RFC 9112 §6.3); different ones are an unframed answer.
      if (new Set(value).size !== 1) throw new Error("upstream answered with conflicting content-length fields");
      out[name] = value[0];
      continue;
    }
    out[name] = value;
  }
  return out;
}
