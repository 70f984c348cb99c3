/**
 * The gateway's cookie namespace: every cookie Better Auth sets (session token, cookie-cache data,
 * dont_remember, the admin plugin's admin_session, …) starts with this prefix. createAuth passes it
 * as Better Auth's cookiePrefix, so the two cannot drift apart.
 */
export const GATEWAY_COOKIE_PREFIX = "better-auth";

const FOLDED_PREFIX = GATEWAY_COOKIE_PREFIX.toLowerCase();
// Longest first: "__Host-Http-" is one prefix, not "__Host-" before a name "Http-…".
const NAME_PREFIXES = ["__host-http-", "__secure-", "__host-", "__http-"];

/** Space and tab, as RFC 6265bis §5.6 trims them; other whitespace too, since some parsers strip it. */
function trimName(name: string): string {
  return name.replace(/^[\s\u0000-\u001f\u007f]+|[\s\u0000-\u001f\u007f]+$/g, "");
}

/**
 * Whether a cookie name belongs to the gateway under any spelling a cookie jar or a framework could
 * fold to one of its names: surrounding whitespace, case, a `__Secure-`/`__Host-` prefix in any case,
 * percent-encoding, and "_" for "." (PHP and CGI rewrite dots in cookie names).
 */
export function isGatewayCookieName(name: string): boolean {
  let folded = trimName(name).toLowerCase();
  try {
    folded = decodeURIComponent(folded);
  } catch {
    // not percent-encoded
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (const prefix of NAME_PREFIXES) {
      if (folded.startsWith(prefix)) {
        folded = trimName(folded.slice(prefix.length));
        changed = true;
      }
    }
  }
  if (!folded.startsWith(FOLDED_PREFIX)) return false;
  // "better-auth.x", "better-auth_x", "better-auth": the namespace; "better-authority" is somebody else's.
  const next = folded.charAt(FOLDED_PREFIX.length);
  return next === "" || !/[a-z0-9]/.test(next);
}

/**
 * A name=value pair (one cookie of a Cookie header, or the first part of a Set-Cookie) is the
 * gateway's if its name is, or if it has no name and its value reads as a gateway cookie: a browser
 * sends a nameless cookie as its bare value, so `Set-Cookie: =better-auth.session_token=x` comes back
 * as `Cookie: better-auth.session_token=x`.
 */
function isGatewayPair(pair: string): boolean {
  const eq = pair.indexOf("=");
  if (eq === -1) return isGatewayCookieName(pair);
  const name = pair.slice(0, eq);
  if (trimName(name) === "") return isGatewayPair(pair.slice(eq + 1)) || trimName(pair.slice(eq + 1)) === "";
  return isGatewayCookieName(name);
}

/** Whether an upstream's Set-Cookie line would set, overwrite or delete a gateway cookie. */
export function setsGatewayCookie(setCookie: string): boolean {
  const semicolon = setCookie.indexOf(";");
  return isGatewayPair(semicolon === -1 ? setCookie : setCookie.slice(0, semicolon));
}

/** The Cookie header without any gateway cookie; undefined when nothing is left. */
export function withoutGatewayCookies(cookie: string): string | undefined {
  const kept = cookie.split(";").map((c) => c.trim()).filter((c) => c.length > 0 && !isGatewayPair(c));
  return kept.length > 0 ? kept.join("; ") : undefined;
}
