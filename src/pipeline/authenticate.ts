import type { FastifyRequest } from "fastify";
import { GerbangError } from "../errors/catalogue.ts";
import { ANONYMOUS } from "../auth/principal.ts";
import type { Authenticator } from "../auth/authenticators/authenticator.ts";

export const WWW_AUTHENTICATE = 'Bearer realm="gerbang", cookie="better-auth.session_token"';
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Headers that must not appear twice: Node keeps only the first, a peer may keep the last. */
const SINGLE = ["authorization", "x-api-key", "cookie"];

export interface AuthenticateOptions {
  authenticators: readonly Authenticator[];
  trustedOrigins: ReadonlySet<string>;
}

/**
 * Stage: authenticate. Each authenticator says whether the request carries its kind of credential;
 * more than one kind is ambiguous (400), none is anonymous, a present but bad credential is 401.
 */
export function createAuthenticate(options: AuthenticateOptions): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const raw = request.raw.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] ?? "").toLowerCase();
      if (SINGLE.includes(name) && raw.findIndex((h, j) => j % 2 === 0 && j !== i && h.toLowerCase() === name) >= 0) {
        throw new GerbangError("AMBIGUOUS_CREDENTIALS", { reason: `DUPLICATE_${name.toUpperCase().replace(/-/g, "_")}_HEADER` });
      }
    }
    // A browser attaches cookies to a WebSocket handshake from any page (no CORS for WebSockets): a
    // handshake that carries any (the gateway's session, an upstream's own) must come from a trusted page.
    if (request.ws && request.headers.cookie !== undefined && !originTrusted(request, options.trustedOrigins)) throw originRefusal(request);
    const found: Array<[Authenticator, string]> = [];
    for (const authenticator of options.authenticators) {
      const credential = authenticator.detect(request.headers);
      if (credential !== null) found.push([authenticator, credential]);
    }
    if (found.length > 1) throw new GerbangError("AMBIGUOUS_CREDENTIALS", { reason: found.map(([a]) => a.name).join("+") });
    const [only] = found;
    if (only === undefined) {
      request.gerbang.principal = ANONYMOUS;
      return;
    }
    const [authenticator, credential] = only;
    let result;
    try {
      result = await authenticator.authenticate(credential);
    } catch (error) {
      request.log.error({ err: error, authenticator: authenticator.name }, "authenticator failed");
      throw new GerbangError("DEPENDENCY_UNAVAILABLE", { reason: "AUTHENTICATION_BACKEND" });
    }
    if (result.kind !== "authenticated") {
      throw new GerbangError("INVALID_CREDENTIALS", { headers: { "www-authenticate": `${WWW_AUTHENTICATE}, error="invalid_token"` } });
    }
    // Cookies ride along on cross-site requests; a cookie-authenticated write must come from a trusted page.
    if (authenticator.name === "session-cookie" && UNSAFE.has(request.method) && !originTrusted(request, options.trustedOrigins)) {
      throw originRefusal(request);
    }
    request.gerbang.principal = result.principal;
    // Kept in memory only, for a connection that outlives the request (a WebSocket, an event stream):
    // it is authenticated again whenever a revocation could concern it. Never logged or audited.
    request.gerbang.credential = { authenticator, value: credential };
    // A bearer token stays the same when its session slides; a browser needs the cookie renewed.
    if (authenticator.name === "session-cookie" && result.refreshCookies !== undefined) request.gerbang.refreshCookies = result.refreshCookies;
  };
}

/**
 * The refusal for a write whose origin is not trusted: it says whether the Origin was missing or which
 * one was seen (the client's own header, cut short), never which origins are trusted.
 */
export function originRefusal(request: FastifyRequest): GerbangError {
  const origin = request.headers.origin;
  if (typeof origin !== "string") {
    return new GerbangError("ORIGIN_NOT_TRUSTED", {
      reason: "ORIGIN_MISSING",
      message: "This request needs an Origin header naming a trusted origin (a browser sends one; a server-side client must send it itself, see docs/clients.md).",
    });
  }
  const seen = origin.replace(/[^\x21-\x7e]/g, "?").slice(0, 200);
  return new GerbangError("ORIGIN_NOT_TRUSTED", { reason: "ORIGIN_UNTRUSTED", message: `The origin ${seen} is not trusted.` });
}

export function originTrusted(request: FastifyRequest, trusted: ReadonlySet<string>): boolean {
  const origin = request.headers.origin;
  if (typeof origin === "string") return trusted.has(origin);
  const referer = request.headers.referer;
  if (typeof referer !== "string") return false;
  try {
    return trusted.has(new URL(referer).origin);
  } catch {
    return false;
  }
}

/**
 * The gateway's own routes for people (keys, audit, account): a signed-in user, or 401 with the
 * challenge; an API key, however scoped, gets 403 with the route's own reason.
 */
export function requireSignedInUser(request: FastifyRequest, keyRefusal: { reason: string; message: string }): void {
  const principal = request.gerbang.principal;
  if (principal === undefined || principal.authMethod === "anonymous") throw new GerbangError("UNAUTHENTICATED", { headers: { "www-authenticate": WWW_AUTHENTICATE } });
  if (principal.authMethod === "api-key") throw new GerbangError("FORBIDDEN", keyRefusal);
}
