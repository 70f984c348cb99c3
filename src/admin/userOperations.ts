// The operator's account controls (`gerbang users …` and the admin API): each change is written,
// then published on the invalidation bus so every instance forgets the user's cached sessions and
// keys at once — the next request anywhere, a keep-alive connection's included, is decided anew.
import Type from "#typebox";
import { ROLES } from "../auth/createAuth.ts";
import { USER_ATTRIBUTES } from "../auth/createUser.ts";
import { OperationError } from "./operationError.ts";
import type { OperatorServices } from "./operations.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { purgeDueUsers, purgeUser, restoreUser, softDeleteUser, type Deleted } from "./eraseUser.ts";

export interface UserView {
  id: string;
  email: string;
  name: string;
  roles: string[];
  region: string | null;
  emailVerified: boolean;
  banned: boolean;
  banReason: string | null;
  banExpires: string | null;
  createdAt: string;
  /** E.164, when the user signed up or verified one by phone. */
  phoneNumber: string | null;
  /** Soft-deleted at; the purge is due at purgeAfter. */
  deletedAt: string | null;
  purgeAfter: string | null;
  purged: boolean;
}

export const USER_SELECT = { id: true, email: true, name: true, role: true, region: true, emailVerified: true, banned: true, banReason: true, banExpires: true, createdAt: true, deletedAt: true, purgeAfter: true, purgedAt: true, phoneNumber: true } as const;
type UserRow = Prisma.UserGetPayload<{ select: typeof USER_SELECT }>;

export const userView = (u: UserRow): UserView => ({
  id: u.id,
  email: u.email,
  name: u.name,
  roles: (u.role ?? "").split(",").map((r) => r.trim()).filter(Boolean),
  region: u.region,
  emailVerified: u.emailVerified,
  banned: u.banned === true,
  banReason: u.banReason,
  banExpires: u.banExpires?.toISOString() ?? null,
  createdAt: u.createdAt.toISOString(),
  phoneNumber: u.phoneNumber,
  deletedAt: u.deletedAt?.toISOString() ?? null,
  purgeAfter: u.purgeAfter?.toISOString() ?? null,
  purged: u.purgedAt !== null,
});

/** Printable text only: reasons end up in operators' terminals and in audit rows. */
export const PRINTABLE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
export const Email = Type.String({ minLength: 3, maxLength: 320 });

export const UsersListInput = Type.Object(
  {
    search: Type.Optional(Type.String({ minLength: 1, maxLength: 320, pattern: PRINTABLE, description: "part of the email or name, any case" })),
    role: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    banned: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export const SetRoleInput = Type.Object({ email: Email, role: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export const SetAttributesInput = Type.Object(
  { email: Email, attributes: Type.Record(Type.String({ minLength: 1, maxLength: 64 }), Type.Union([Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE }), Type.Null()])) },
  { additionalProperties: false },
);
export const BanInput = Type.Object(
  { email: Email, reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, pattern: PRINTABLE })), expiresInSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86400 })) },
  { additionalProperties: false },
);
export const UnbanInput = Type.Object({ email: Email }, { additionalProperties: false });
export const RevokeSessionsInput = Type.Object({ email: Email, keys: Type.Optional(Type.Boolean({ description: "also revoke the user's API keys" })) }, { additionalProperties: false });

async function target(s: OperatorServices, email: string): Promise<UserRow> {
  const user = await s.prisma.user.findUnique({ where: { email: email.toLowerCase() }, select: USER_SELECT });
  if (user === null) throw new OperationError(`no user with email ${email}`);
  return user;
}

/**
 * Tells every instance to forget the user's cached sessions and keys. False: no instance but this
 * process was told (no Redis, or it refused; the bus retries with every heartbeat), so running
 * gateways apply the change within auth.sessionCacheTtlMs — the CLI says so rather than pretend.
 */
async function announce(s: OperatorServices, userId: string): Promise<boolean> {
  const published = await s.bus.publish({ kind: "user", id: userId });
  // Inside a running gateway (the admin API, or the CLI asking the embedded database's holder) the
  // local apply has reached the instance that serves.
  return published || s.reloadPolicy !== undefined;
}

/** An admin acting on their own account through the API could lock everyone out; the shell can undo it. */
function refuseSelf(s: OperatorServices, user: UserRow, what: string): void {
  if (s.caller?.userId !== undefined && s.caller.userId === user.id) throw new OperationError(`you cannot ${what} your own account`);
}

export async function listUsers(s: OperatorServices, input: Type.Static<typeof UsersListInput>): Promise<{ users: UserView[]; total: number; nextOffset: number | null }> {
  const where: Prisma.UserWhereInput = {
    AND: [
      input.search === undefined ? {} : { OR: [{ email: { contains: input.search, mode: "insensitive" } }, { name: { contains: input.search, mode: "insensitive" } }] },
      // Roles are a comma-separated column: a whole-item match, never a substring ("sales" is not "presales").
      input.role === undefined ? {} : { OR: [{ role: input.role }, { role: { startsWith: `${input.role},` } }, { role: { endsWith: `,${input.role}` } }, { role: { contains: `,${input.role},` } }] },
      input.banned === undefined ? {} : input.banned ? { banned: true } : { OR: [{ banned: false }, { banned: null }] },
    ],
  };
  const limit = input.limit ?? 100;
  const offset = input.offset ?? 0;
  const [rows, total] = await Promise.all([s.prisma.user.findMany({ where, select: USER_SELECT, orderBy: [{ createdAt: "asc" }, { id: "asc" }], take: limit, skip: offset }), s.prisma.user.count({ where })]);
  return { users: rows.map(userView), total, nextOffset: offset + rows.length < total ? offset + rows.length : null };
}

/** What a change returns: the user as now stored, and whether the running instances were told. */
export type Changed<T> = T & { announced: boolean };

/**
 * New roles take a new sign-in: the user's sessions end (their tokens are never promoted, so one
 * lifted earlier gains nothing), and the next sign-in issues a fresh token with the new roles.
 */
export async function setRole(s: OperatorServices, input: Type.Static<typeof SetRoleInput>): Promise<Changed<UserView & { sessionsRevoked: number }>> {
  const roles = [...new Set(input.role.split(",").map((r) => r.trim()).filter(Boolean))];
  const unknown = roles.find((r) => !(ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || unknown !== undefined) throw new OperationError(`unknown role ${unknown ?? "(none)"} (known: ${ROLES.join(", ")})`);
  const user = await target(s, input.email);
  refuseSelf(s, user, "change the roles of");
  const unchanged = [...roles].sort().join(",") === userView(user).roles.sort().join(",");
  const [updated, sessions] = await s.prisma.$transaction([
    s.prisma.user.update({ where: { id: user.id }, data: { role: roles.join(",") }, select: USER_SELECT }),
    s.prisma.session.deleteMany({ where: unchanged ? { id: { in: [] } } : { userId: user.id } }),
  ]);
  return { ...userView(updated), sessionsRevoked: sessions.count, announced: await announce(s, user.id) };
}

export async function setAttributes(s: OperatorServices, input: Type.Static<typeof SetAttributesInput>): Promise<Changed<UserView>> {
  const unknown = Object.keys(input.attributes).find((k) => !USER_ATTRIBUTES.has(k));
  if (unknown !== undefined) throw new OperationError(`unknown attribute ${unknown} (known: ${[...USER_ATTRIBUTES].join(", ")})`);
  const user = await target(s, input.email);
  const updated = await s.prisma.user.update({ where: { id: user.id }, data: input.attributes, select: USER_SELECT });
  return { ...userView(updated), announced: await announce(s, user.id) };
}

/** A ban ends every session of the user at once; their keys stop verifying (a banned owner's keys are refused). */
export async function banUser(s: OperatorServices, input: Type.Static<typeof BanInput>): Promise<Changed<UserView & { sessionsRevoked: number }>> {
  const user = await target(s, input.email);
  if (user.deletedAt !== null) throw new OperationError(`${input.email} is deleted: a ban would change nothing until a restore (and would then outlast it)`);
  refuseSelf(s, user, "ban");
  const [updated, sessions] = await s.prisma.$transaction([
    s.prisma.user.update({
      where: { id: user.id },
      data: { banned: true, banReason: input.reason ?? null, banExpires: input.expiresInSec === undefined ? null : new Date(Date.now() + input.expiresInSec * 1000) },
      select: USER_SELECT,
    }),
    s.prisma.session.deleteMany({ where: { userId: user.id } }),
  ]);
  return { ...userView(updated), sessionsRevoked: sessions.count, announced: await announce(s, user.id) };
}

export async function unbanUser(s: OperatorServices, input: Type.Static<typeof UnbanInput>): Promise<Changed<UserView>> {
  const user = await target(s, input.email);
  // A deleted account's ban is what keeps it signed out: lifting it is a restore, and says so.
  if (user.deletedAt !== null) throw new OperationError(`${input.email} is deleted, not banned: gerbang users restore undoes a deletion during its grace period`);
  const updated = await s.prisma.user.update({ where: { id: user.id }, data: { banned: false, banReason: null, banExpires: null }, select: USER_SELECT });
  return { ...userView(updated), announced: await announce(s, user.id) };
}

export async function revokeSessions(s: OperatorServices, input: Type.Static<typeof RevokeSessionsInput>): Promise<Changed<{ user: string; sessionsRevoked: number; keysRevoked: string[] }>> {
  const user = await target(s, input.email);
  const { count } = await s.prisma.session.deleteMany({ where: { userId: user.id } });
  const keysRevoked = input.keys === true ? await s.keys.revokeAllOf(user.id) : [];
  return { user: user.id, sessionsRevoked: count, keysRevoked, announced: await announce(s, user.id) };
}

export const DeleteInput = Type.Object(
  { email: Email, graceDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 3650, description: "days until the purge (default auth.erasureGraceDays)" })) },
  { additionalProperties: false },
);
export const RestoreInput = Type.Object({ email: Email }, { additionalProperties: false });
export const PurgeInput = Type.Object(
  { email: Type.Optional(Email), now: Type.Optional(Type.Boolean({ description: "purge this deleted user without waiting for the grace period" })) },
  { additionalProperties: false },
);

/** Soft delete: sign-in refused, sessions ended and keys revoked everywhere at once; purged after the grace period. */
export async function deleteUser(s: OperatorServices, input: Type.Static<typeof DeleteInput>): Promise<Changed<Deleted>> {
  const user = await target(s, input.email);
  refuseSelf(s, user, "delete");
  const outcome = await softDeleteUser({ prisma: s.prisma, keys: s.keys }, user.id, (input.graceDays ?? s.config.auth.erasureGraceDays) * 86_400);
  if (outcome === "ALREADY_DELETED") throw new OperationError(`${input.email} is already deleted (purge due ${user.purgeAfter?.toISOString() ?? "now"})`);
  if (outcome === "NOT_FOUND") throw new OperationError(`no user with email ${input.email}`);
  for (const other of outcome.impersonated) await announce(s, other);
  return { ...outcome, announced: await announce(s, user.id) };
}

export async function restoreDeletedUser(s: OperatorServices, input: Type.Static<typeof RestoreInput>): Promise<Changed<UserView>> {
  const user = await target(s, input.email);
  const outcome = await restoreUser(s.prisma, user.id);
  if (outcome !== "RESTORED") throw new OperationError(outcome === "PURGED" ? `${input.email} was purged: nothing is left to restore` : `${input.email} is not deleted`);
  const restored = await s.prisma.user.findUniqueOrThrow({ where: { id: user.id }, select: USER_SELECT });
  return { ...userView(restored), announced: await announce(s, user.id) };
}

/** Purges due users (all of them, or the one named; `now` skips its grace period). */
export async function purgeUsers(s: OperatorServices, input: Type.Static<typeof PurgeInput>): Promise<{ purged: string[] }> {
  if (input.now === true && input.email === undefined) throw new OperationError("--now purges one deleted user, named by email; without it every user whose grace period is over is purged");
  if (input.email === undefined) return { purged: await purgeDueUsers(s.prisma) };
  const user = await target(s, input.email);
  if (user.deletedAt === null) throw new OperationError(`${input.email} is not deleted: gerbang users delete comes first`);
  if (await purgeUser(s.prisma, user.id, { ignoreGrace: input.now === true })) return { purged: [user.id] };
  throw new OperationError(user.purgedAt !== null ? `${input.email} is already purged` : `${input.email}'s grace period runs until ${user.purgeAfter?.toISOString() ?? "?"} (--now purges it anyway)`);
}
