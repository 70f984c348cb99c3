import type { PrincipalAttributes } from "../policy/conditions.ts";

export type AuthMethod = "session" | "api-key" | "anonymous";

/** Who is calling: written by the authenticate stage, read by every later stage. */
export interface Principal {
  userId: string | null;
  roles: readonly string[];
  authMethod: AuthMethod;
  /** Attributes policies may read as ${principal.<name>}. */
  attributes: PrincipalAttributes;
  /** Set for session principals: lets sign-out drop exactly this cache entry. */
  sessionId?: string;
  /** Set for session principals: when the session was signed in (ms), for actions that need a fresh sign-in. */
  signedInAt?: number;
  /** Set for API key principals: the key's id, tier and scopes (its ability is owner ∩ scopes). */
  key?: { id: string; tier: string; scopes: readonly string[] };
}

export const ANONYMOUS: Principal = Object.freeze({
  userId: null,
  roles: Object.freeze(["anonymous"]),
  authMethod: "anonymous",
  attributes: Object.freeze({}),
});

export function rolesFromField(role: unknown): string[] {
  if (typeof role !== "string") return [];
  return role.split(",").map((r) => r.trim()).filter((r) => r.length > 0 && r !== "anonymous");
}
