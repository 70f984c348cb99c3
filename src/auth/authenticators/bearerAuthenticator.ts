import type { IncomingHttpHeaders } from "node:http";
import type { SessionResolver } from "../sessionResolver.ts";
import type { Authenticator, AuthnResult } from "./authenticator.ts";

/** `Authorization: Bearer <session token>` (Better Auth's bearer plugin). Other schemes are rejected. */
export function bearerAuthenticator(resolver: SessionResolver): Authenticator {
  return {
    name: "bearer",
    detect: (headers: IncomingHttpHeaders) => headers.authorization ?? null,
    async authenticate(credential, options): Promise<AuthnResult> {
      const match = /^Bearer +([A-Za-z0-9._~+/=-]{16,512})$/i.exec(credential.trim());
      if (match === null) return { kind: "rejected", reason: "unsupported authorization scheme or malformed token" };
      return resolver.resolve({ authorization: `Bearer ${match[1]}` }, options);
    },
  };
}
