import type { IncomingHttpHeaders } from "node:http";
import type { SessionResolver } from "../sessionResolver.ts";
import type { Authenticator, AuthnResult } from "./authenticator.ts";
import { GATEWAY_COOKIE_PREFIX } from "../gatewayCookies.ts";

export const SESSION_COOKIE_NAMES: readonly string[] = [`${GATEWAY_COOKIE_PREFIX}.session_token`, `__Secure-${GATEWAY_COOKIE_PREFIX}.session_token`];

/** Finds Better Auth's session cookie; returns "name=value" so the resolver sees only that cookie. */
export function findSessionCookie(cookieHeader: string | undefined): string | null {
  if (cookieHeader === undefined) return null;
  let found: string | null = null;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (SESSION_COOKIE_NAMES.includes(name)) {
      // Two session cookies are ambiguous; "!" marks it so the resolver rejects it.
      if (found !== null) return "!";
      found = `${name}=${part.slice(eq + 1).trim()}`;
    }
  }
  return found;
}

export function sessionCookieAuthenticator(resolver: SessionResolver): Authenticator {
  return {
    name: "session-cookie",
    detect: (headers: IncomingHttpHeaders) => findSessionCookie(headers.cookie),
    async authenticate(credential, options): Promise<AuthnResult> {
      if (credential === "!") return { kind: "rejected", reason: "more than one session cookie" };
      return resolver.resolve({ cookie: credential }, options);
    },
  };
}
