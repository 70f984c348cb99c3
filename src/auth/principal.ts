import type { PrincipalAttributes } from "../policy/conditions.ts";

export type AuthMethod = "session" | "api-key" | "anonymous";

/** Who is calling: written by the authenticate stage, read by every later stage. */
export interface Principal {
  userId: string | null;
  /** Set for a session an admin opened by impersonating this user: that admin's id. */
  impersonatedBy?: string;
  roles: readonly string[];
  authMethod: AuthMethod;
  /** Attributes policies may read as ${principal.<name>}. */
  attributes: PrincipalAttributes;
  /** Set for session principals: lets sign-out drop exactly this cache entry. */
  sessionId?: string;
  /** Set for session principals: when the session was signed in (ms), for actions that need a fresh sign-in. */
  signedInAt?: number;
  /**
   * Roles the user holds but this credential may not exercise (auth.twoFactor.requiredForRoles, no
   * second factor); `heldRoles` is every role the user holds. Both set only when something is withheld.
   */
  withheldRoles?: readonly string[];
  heldRoles?: readonly string[];
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

/**
 * The roles a credential acts with: a role that needs a second factor is withheld from a credential
 * that did not present one, and the user keeps at least the `user` role's rights.
 */
export function rolesForCredential(held: readonly string[], needSecondFactor: ReadonlySet<string>, secondFactor: boolean): Pick<Principal, "roles" | "withheldRoles" | "heldRoles"> {
  const withheld = secondFactor || needSecondFactor.size === 0 ? [] : held.filter((r) => needSecondFactor.has(r));
  if (withheld.length === 0) return { roles: Object.freeze([...held]) };
  const kept = held.filter((r) => !needSecondFactor.has(r));
  if (!kept.includes("user")) kept.push("user");
  return { roles: Object.freeze(kept), withheldRoles: Object.freeze(withheld), heldRoles: Object.freeze([...held]) };
}
