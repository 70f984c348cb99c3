import type { Auth } from "./createAuth.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { MIN_PASSWORD_LENGTH, ROLES } from "./createAuth.ts";

export interface NewUser {
  email: string;
  password: string;
  role: string;
  name?: string;
  /** Attributes policies read, e.g. region. Only known columns are accepted. */
  attributes?: Record<string, string>;
}

/** The attribute columns a user has (policies read them as `principal.<name>`). */
export const USER_ATTRIBUTES: ReadonlySet<string> = new Set(["region"]);

/** Creates a verified user (operators vouch for the address). Returns the new id. */
export async function createVerifiedUser(auth: Auth, prisma: PrismaClient, user: NewUser): Promise<string> {
  const roles = user.role.split(",").map((r) => r.trim());
  const unknownRole = roles.find((r) => !(ROLES as readonly string[]).includes(r));
  if (unknownRole !== undefined) throw new Error(`unknown role ${unknownRole} (known: ${ROLES.join(", ")})`);
  // Better Auth's admin createUser checks only the maximum: the minimum applies to operators too.
  if (user.password.length < MIN_PASSWORD_LENGTH) throw new Error(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  const unknownAttr = Object.keys(user.attributes ?? {}).find((k) => !USER_ATTRIBUTES.has(k));
  if (unknownAttr !== undefined) throw new Error(`unknown attribute ${unknownAttr} (known: ${[...USER_ATTRIBUTES].join(", ")})`);
  const created = await auth.api.createUser({
    body: { email: user.email, password: user.password, name: user.name ?? user.email.split("@")[0] ?? user.email, role: roles as (typeof ROLES)[number][] },
  });
  await prisma.user.update({ where: { id: created.user.id }, data: { emailVerified: true, ...(user.attributes ?? {}) } });
  return created.user.id;
}
