// Erasure of a user in two steps. Deleting is at once and reversible during the grace period: sign-in
// is refused (through the ban fields every session creation checks), every session ends and every key
// is revoked — all soft, nothing the audit trail names disappears. Purging, after the grace period,
// erases the personal data: the user's own rows go (sessions, credentials, keys, second factor, pending
// tokens, outbox mail and SMS) and the user row stays as a tombstone with its id and no email, name or
// attributes. Audit events name users by id only, so the chain verifies before and after.
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { ApiKeyService } from "../keys/apiKeyService.ts";

/** The ban reason of a deleted account (sign-in is refused as for any ban). */
export const DELETED_REASON = "account deleted";

export interface ErasureDeps {
  prisma: PrismaClient;
  keys: ApiKeyService;
}

export interface Deleted {
  user: string;
  deletedAt: string;
  purgeAfter: string;
  sessionsRevoked: number;
  keysRevoked: string[];
  /** Users whose sessions this user was impersonating (ended too: their caches must be told). */
  impersonated: string[];
}

export type DeleteRefusal = "NOT_FOUND" | "ALREADY_DELETED";

/** Soft-deletes the user; the purge is due `graceSec` from now. */
export async function softDeleteUser(deps: ErasureDeps, userId: string, graceSec: number): Promise<Deleted | DeleteRefusal> {
  const now = new Date();
  const purgeAfter = new Date(now.getTime() + graceSec * 1000);
  // Claimed by a conditional update: two deletions (or a deletion and a purge) never both proceed.
  // Sessions in which this user impersonates someone end too: they act as the other user, for this one.
  const impersonated = (await deps.prisma.session.findMany({ where: { impersonatedBy: userId }, select: { userId: true }, distinct: ["userId"] })).map((r) => r.userId);
  const [sessions, claimed] = await deps.prisma.$transaction([
    deps.prisma.session.deleteMany({ where: { OR: [{ userId }, { impersonatedBy: userId }] } }),
    deps.prisma.user.updateMany({ where: { id: userId, deletedAt: null }, data: { deletedAt: now, purgeAfter, banned: true, banReason: DELETED_REASON, banExpires: null } }),
  ]);
  if (claimed.count === 0) {
    const exists = await deps.prisma.user.findUnique({ where: { id: userId }, select: { id: true } });
    return exists === null ? "NOT_FOUND" : "ALREADY_DELETED";
  }
  // A sign-in that read the user just before the ban may still have created a session: ended too (and
  // every lookup re-reads the ban anyway). Keys are revoked (kept, with their ids) after the commit.
  await deps.prisma.session.deleteMany({ where: { OR: [{ userId }, { impersonatedBy: userId }] } });
  const keysRevoked = await deps.keys.revokeAllOf(userId);
  return { user: userId, deletedAt: now.toISOString(), purgeAfter: purgeAfter.toISOString(), sessionsRevoked: sessions.count, keysRevoked, impersonated };
}

/** Undoes a deletion during the grace period: the ban lifts; ended sessions and revoked keys stay so. */
export async function restoreUser(prisma: PrismaClient, userId: string): Promise<"RESTORED" | "NOT_DELETED" | "PURGED"> {
  const restored = await prisma.user.updateMany({ where: { id: userId, deletedAt: { not: null }, purgedAt: null }, data: { deletedAt: null, purgeAfter: null, banned: false, banReason: null, banExpires: null } });
  if (restored.count === 1) return "RESTORED";
  const row = await prisma.user.findUnique({ where: { id: userId }, select: { purgedAt: true } });
  return row?.purgedAt !== null && row?.purgedAt !== undefined ? "PURGED" : "NOT_DELETED";
}

/** The tombstone's email: unique per id, and in a reserved domain no one can receive mail at. */
export const erasedEmail = (userId: string): string => `erased-${userId}@erased.invalid`;

/**
 * Purges one soft-deleted user whose grace period is over (or any soft-deleted user with `now`),
 * in one transaction. False: nothing to purge (not deleted, already purged, or not due).
 */
export async function purgeUser(prisma: PrismaClient, userId: string, options: { ignoreGrace?: boolean } = {}): Promise<boolean> {
  const due = { id: userId, deletedAt: { not: null }, purgedAt: null, ...(options.ignoreGrace === true ? {} : { purgeAfter: { lte: new Date() } }) };
  return prisma.$transaction(async (tx) => {
    // Locks the row: a concurrent restore or purge waits, then finds nothing to do.
    const [user] = await tx.$queryRaw<Array<{ email: string; phoneNumber: string | null }>>`SELECT email, "phoneNumber" FROM "user" WHERE id = ${userId} AND "deletedAt" IS NOT NULL AND "purgedAt" IS NULL FOR UPDATE`;
    if (user === undefined || (await tx.user.count({ where: due })) === 0) return false;
    await tx.session.deleteMany({ where: { userId } });
    await tx.account.deleteMany({ where: { userId } });
    await tx.twoFactor.deleteMany({ where: { userId } });
    await tx.apikey.deleteMany({ where: { referenceId: userId } });
    // Pending reset links and the like name the user by id; outbox mail by address.
    await tx.verification.deleteMany({ where: { value: userId } });
    await tx.mailOutbox.deleteMany({ where: { to: user.email } });
    // A phone number's codes, messages and cool-down name it, not the user.
    if (user.phoneNumber !== null) {
      const number = user.phoneNumber;
      await tx.verification.deleteMany({ where: { identifier: { in: [`phone-number-otp-${number}`, `phone-number-reset-${number}`] } } });
      await tx.smsOutbox.deleteMany({ where: { to: number } });
      await tx.smsCooldown.deleteMany({ where: { number } });
    }
    await tx.user.update({
      where: { id: userId },
      data: { email: erasedEmail(userId), name: "", image: null, region: null, role: null, emailVerified: false, phoneNumber: null, phoneNumberVerified: false, twoFactorEnabled: false, banReason: DELETED_REASON, purgedAt: new Date() },
    });
    return true;
  });
}

/** Purges every user whose grace period is over; their ids. */
export async function purgeDueUsers(prisma: PrismaClient, limit = 1000): Promise<string[]> {
  const due = await prisma.user.findMany({ where: { purgedAt: null, purgeAfter: { lte: new Date() }, deletedAt: { not: null } }, select: { id: true }, orderBy: { purgeAfter: "asc" }, take: limit });
  const purged: string[] = [];
  const failed: string[] = [];
  for (const { id } of due) {
    // One user whose purge fails must not hold up everyone due after them.
    try {
      if (await purgeUser(prisma, id)) purged.push(id);
    } catch {
      failed.push(id);
    }
  }
  if (failed.length > 0 && purged.length === 0) throw new Error(`purging ${failed.length} user(s) failed`);
  return purged;
}
