// One-time codes for phone sign-in, kept the way a password would be: Better Auth's phone-number plugin
// stores `<code>:<attempts>` in the verification table, and the database hook below replaces the code
// with an HMAC (keyed by the gateway's secret, bound to the number) before the row is written. The
// plugin's own check would compare plain codes, so the gateway verifies (verifyPhoneOtp): each attempt is
// counted before the code is compared, in one statement, so parallel guesses cannot share an attempt.
import { createHmac, timingSafeEqual } from "node:crypto";
import { APIError } from "better-auth/api";
import type { PrismaClient } from "../generated/prisma/client.ts";

/** Attempts per code; the fifth wrong one kills it. */
export const OTP_MAX_ATTEMPTS = 5;
export const OTP_LENGTH = 6;
export const OTP_EXPIRES_IN_SEC = 300;

const IDENTIFIERS = /^phone-number-(?:otp|reset)-\+\d{6,15}$/;
const HASHED = "h";

export class OtpHasher {
  readonly #key: Buffer;
  constructor(secret: string) {
    this.#key = createHmac("sha256", secret).update("gerbang phone otp v1").digest();
  }
  digest(identifier: string, code: string): string {
    return createHmac("sha256", this.#key).update(`${identifier}\n${code}`).digest("base64url");
  }
  /**
   * The verification row's value as it may be stored: a phone code's replaced by its digest
   * (`h:<digest>:<attempts>`); any other row as it is.
   */
  storedValue(identifier: string, value: string): string {
    if (!IDENTIFIERS.test(identifier)) return value;
    const [code = "", attempts = "0"] = value.split(":");
    return `${HASHED}:${this.digest(identifier, code)}:${/^\d+$/.test(attempts) ? attempts : "0"}`;
  }
}

const refuse = (status: "BAD_REQUEST" | "FORBIDDEN", code: string, message: string): APIError => new APIError(status, { code, message });

/**
 * Checks `code` against the newest code sent for `identifier`. The attempt is counted first; the
 * code is spent when it matches (one caller wins), dead when the attempts are used up or it expired.
 */
export async function verifyPhoneOtp(prisma: PrismaClient, hasher: OtpHasher, identifier: string, code: string): Promise<boolean> {
  const [row] = await prisma.$queryRaw<Array<{ id: string; value: string; expiresAt: Date }>>`
    UPDATE verification
       SET value = split_part(value, ':', 1) || ':' || split_part(value, ':', 2) || ':' || (split_part(value, ':', 3)::int + 1)::text,
           "updatedAt" = now()
     WHERE id = (SELECT id FROM verification WHERE identifier = ${identifier} ORDER BY "createdAt" DESC, id DESC LIMIT 1)
       AND value LIKE ${`${HASHED}:%`}
    RETURNING id, value, "expiresAt"`;
  if (row === undefined) throw refuse("BAD_REQUEST", "OTP_NOT_FOUND", "No code was sent to this number, or it was used up: request a new one.");
  const [, stored = "", rawAttempts = ""] = row.value.split(":");
  const attempts = Number(rawAttempts);
  const dead = async (): Promise<void> => void (await prisma.verification.deleteMany({ where: { identifier } }));
  if (row.expiresAt.getTime() <= Date.now()) {
    await dead();
    throw refuse("BAD_REQUEST", "OTP_EXPIRED", "The code has expired: request a new one.");
  }
  if (!Number.isSafeInteger(attempts) || attempts > OTP_MAX_ATTEMPTS) {
    await dead();
    throw refuse("FORBIDDEN", "TOO_MANY_ATTEMPTS", "Too many wrong codes: request a new one.");
  }
  const expected = Buffer.from(stored);
  const given = Buffer.from(hasher.digest(identifier, code));
  if (expected.length === given.length && timingSafeEqual(expected, given)) {
    // Spent by whoever deletes it: two requests with the right code never both sign in.
    const spent = await prisma.verification.deleteMany({ where: { id: row.id } });
    return spent.count === 1;
  }
  if (attempts >= OTP_MAX_ATTEMPTS) await dead();
  return false;
}

/**
 * The resend cool-down, shared by every instance through one row per number: claims the right to send
 * now, or answers how many seconds remain. `release` gives a claim back when the send failed.
 */
export async function claimSmsSlot(prisma: PrismaClient, number: string, cooldownSec: number): Promise<{ claimed: Date } | { retryAfterSec: number }> {
  const [claimed] = await prisma.$queryRaw<Array<{ sent_at: Date }>>`
    INSERT INTO sms_cooldown (number, sent_at) VALUES (${number}, now())
    ON CONFLICT (number) DO UPDATE SET sent_at = now()
     WHERE sms_cooldown.sent_at <= now() - make_interval(secs => ${cooldownSec}::double precision)
    RETURNING sent_at`;
  if (claimed !== undefined) return { claimed: claimed.sent_at };
  const [held] = await prisma.$queryRaw<Array<{ remaining: number }>>`
    SELECT GREATEST(1, CEIL(EXTRACT(EPOCH FROM (sent_at + make_interval(secs => ${cooldownSec}::double precision) - now()))))::int AS remaining
      FROM sms_cooldown WHERE number = ${number}`;
  return { retryAfterSec: held?.remaining ?? 1 };
}

export async function releaseSmsSlot(prisma: PrismaClient, number: string, claimed: Date): Promise<void> {
  await prisma.smsCooldown.deleteMany({ where: { number, sentAt: claimed } });
}

/** Cool-downs long over: nothing to keep a number for. */
export async function pruneSmsCooldowns(prisma: PrismaClient, olderThanSec = 86_400): Promise<number> {
  return (await prisma.smsCooldown.deleteMany({ where: { sentAt: { lt: new Date(Date.now() - olderThanSec * 1000) } } })).count;
}
