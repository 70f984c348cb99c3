import type { IncomingHttpHeaders } from "node:http";
import type { Authenticator, AuthnResult } from "./authenticator.ts";

/**
 * The slot for partner API keys (`x-api-key`). Until key issuance ships, every presented key is
 * rejected: a credential the gateway cannot verify must never become anonymous access.
 */
export function apiKeyAuthenticator(): Authenticator {
  return {
    name: "api-key",
    detect: (headers: IncomingHttpHeaders) => {
      const value = headers["x-api-key"];
      return typeof value === "string" ? value : Array.isArray(value) ? value.join(",") : null;
    },
    async authenticate(): Promise<AuthnResult> {
      return { kind: "rejected", reason: "api keys are not enabled" };
    },
  };
}
