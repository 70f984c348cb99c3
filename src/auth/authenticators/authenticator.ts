import type { IncomingHttpHeaders } from "node:http";
import type { Principal } from "../principal.ts";

/**
 * Oathkeeper's contract: an authenticator that finds no credential of its kind says "not mine" and
 * the next one is asked; one that finds a credential either authenticates it or rejects it, and a
 * rejected credential is a 401, never a fall-through to anonymous.
 */
export type AuthnResult =
  | { kind: "not-mine" }
  | {
      kind: "authenticated";
      principal: Principal;
      credentialKey: string;
      /** Set-Cookie values the client should receive (a session cookie renewed by sliding refresh). */
      refreshCookies?: readonly string[];
    }
  | { kind: "rejected"; reason: string };

export interface Authenticator {
  readonly name: string;
  /** Cheap, synchronous: does the request carry this kind of credential? */
  detect(headers: IncomingHttpHeaders): string | null;
  /** `refresh: false`: a check again of a credential already in use (an open connection), which must not extend its session. */
  authenticate(credential: string, options?: { refresh?: boolean }): Promise<AuthnResult>;
}
