import type { IncomingHttpHeaders } from "node:http";
import type { ApiKeyStore } from "../../keys/apiKeyStore.ts";
import type { Authenticator, AuthnResult } from "./authenticator.ts";

/** Partner API keys in `x-api-key` (Node lower-cases header names, so any spelling of it). */
export function apiKeyAuthenticator(store: ApiKeyStore): Authenticator {
  return {
    name: "api-key",
    detect: (headers: IncomingHttpHeaders) => {
      const value = headers["x-api-key"];
      return typeof value === "string" ? value : Array.isArray(value) ? value.join(",") : null;
    },
    authenticate(credential): Promise<AuthnResult> {
      return store.verify(credential.trim());
    },
  };
}
