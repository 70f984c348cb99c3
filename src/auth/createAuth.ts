import { betterAuth } from "better-auth";
import { prismaAdapter } from "better-auth/adapters/prisma";
// Each plugin from its own entry: the "better-auth/plugins" barrel loads every plugin there is.
import { admin } from "better-auth/plugins/admin";
import { bearer } from "better-auth/plugins/bearer";
import { twoFactor } from "better-auth/plugins/two-factor";
import { phoneNumber } from "better-auth/plugins/phone-number";
import { apiKey } from "@better-auth/api-key";
import { APIError } from "better-auth/api";
import { API_KEY_PREFIX, generateApiKey } from "../keys/apiKeyFormat.ts";
import { createAccessControl } from "better-auth/plugins/access";
import { defaultStatements, adminAc, userAc } from "better-auth/plugins/admin/access";
import { hash, verify, type Algorithm } from "@node-rs/argon2";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { MailSender } from "./mailSender.ts";
import type { SmsSender } from "./smsSender.ts";
import { OTP_EXPIRES_IN_SEC, OTP_LENGTH, OTP_MAX_ATTEMPTS, OtpHasher, verifyPhoneOtp } from "./phoneOtp.ts";
import type { GerbangConfig } from "../config/schema.ts";
import { GATEWAY_COOKIE_PREFIX } from "./gatewayCookies.ts";

/** Shortest password accepted, at sign-up, reset and `gerbang users create` alike. */
export const MIN_PASSWORD_LENGTH = 10;

export interface AuthOptions {
  prisma: PrismaClient;
  secret: string;
  publicUrl: string;
  trustedOrigins: string[];
  mail: MailSender;
  /** Where one-time codes for phone sign-in go. */
  sms: SmsSender;
  /** Problems nobody waits for (a background send that failed). */
  log?: (msg: string) => void;
  /** Session lifetime, email verification and key lifetime come straight from the configuration. */
  config: Pick<GerbangConfig, "auth" | "apiKeys">;
}

/** The roles the policies speak of. Better Auth only needs to know they exist. */
export const ROLES = ["admin", "user", "sales", "partner"] as const;

const ac = createAccessControl(defaultStatements);
const roles = { admin: adminAc, user: userAc, sales: ac.newRole({ user: [], session: [] }), partner: ac.newRole({ user: [], session: [] }) };

// OWASP's argon2id baseline (19 MiB, 2 passes); verify costs a few ms, so it stays off the proxy path.
// Algorithm is an ambient const enum; 2 is Argon2id.
const ARGON2 = { algorithm: 2 as Algorithm, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/**
 * The routes whose new session has just checked a second factor (the two-factor plugin's). Every other
 * way to a session (a password, a remembered device, an impersonation) leaves secondFactor false.
 */
const SECOND_FACTOR_ROUTES = new Set(["/two-factor/verify-totp", "/two-factor/verify-backup-code"]);

/** The one route that writes a user's phone number: after its code was verified. */
const PHONE_VERIFY = "/phone-number/verify";

/** The address a user who signed up by phone has until they add one: unique, reserved, never mailed. */
export const phoneSignUpEmail = (e164: string): string => `phone-${e164.slice(1)}@phone.invalid`;

export function createAuth(options: AuthOptions) {
  const otp = new OtpHasher(options.secret);
  return betterAuth({
    appName: "Gerbang",
    baseURL: options.publicUrl,
    basePath: "/api/auth",
    secret: options.secret,
    database: prismaAdapter(options.prisma, { provider: "postgresql" }),
    trustedOrigins: [options.publicUrl, ...options.trustedOrigins],
    telemetry: { enabled: false },
    // The gateway's own buckets (shared through Redis, per account and address) replace Better Auth's per-process limiter.
    rateLimit: { enabled: false },
    emailAndPassword: {
      enabled: true,
      requireEmailVerification: options.config.auth.requireEmailVerification,
      minPasswordLength: MIN_PASSWORD_LENGTH,
      maxPasswordLength: 256,
      revokeSessionsOnPasswordReset: true,
      // A sign-up for an existing email answers with a made-up user; it must look exactly like a new one,
      // including what the admin plugin adds on create (role, ban fields), or the shape tells who exists.
      customSyntheticUser: ({ coreFields, additionalFields, id }) => ({ ...coreFields, role: "user", banned: false, banReason: null, banExpires: null, ...additionalFields, phoneNumber: null, phoneNumberVerified: false, deletedAt: null, id }),
      password: {
        hash: (password) => hash(password, ARGON2),
        verify: ({ hash: digest, password }) => verify(digest, password),
      },
      sendResetPassword: async ({ user, url, token }) => {
        await options.mail.send({ to: user.email, subject: "Reset your password", text: `Reset your password: ${url}`, kind: "reset-password", token });
      },
    },
    emailVerification: {
      sendOnSignUp: true,
      autoSignInAfterVerification: false,
      sendVerificationEmail: async ({ user, url, token }) => {
        await options.mail.send({ to: user.email, subject: "Verify your email", text: `Verify your email: ${url}`, kind: "verify-email", token });
      },
    },
    session: {
      expiresIn: options.config.auth.sessionExpiresInSec,
      updateAge: options.config.auth.sessionUpdateAgeSec,
      freshAge: options.config.auth.freshSignInSec,
      // No cookie cache: a revoked session must stop working on the next lookup, not in minutes.
      cookieCache: { enabled: false },
      additionalFields: {
        secondFactor: { type: "boolean", required: false, input: false, defaultValue: false },
      },
    },
    databaseHooks: {
      // Better Auth writes an unset field as null: a user signed up by email must look like the made-up
      // user a taken address gets, so phoneNumberVerified is false, not null. (The phone plugin itself
      // refuses a phoneNumber sent with a sign-up or an update-user: a number is set by verifying it.)
      user: {
        create: {
          before: async (user) => ({ data: { ...user, phoneNumberVerified: user.phoneNumberVerified ?? false } }),
        },
      },
      // A phone code is never written in the clear (src/auth/phoneOtp.ts).
      verification: {
        create: {
          before: async (verification) => ({ data: { ...verification, value: otp.storedValue(verification.identifier, verification.value) } }),
        },
      },
      session: {
        create: {
          // Decided by the route that creates the session, never by anything the client sends.
          before: async (session, context) => {
            const owner = await options.prisma.user.findUnique({ where: { id: session.userId }, select: { deletedAt: true } });
            if (owner?.deletedAt !== null && owner?.deletedAt !== undefined) {
              throw new APIError("FORBIDDEN", { code: "ACCOUNT_DELETED", message: "This account is deleted." });
            }
            // The two-factor plugin guards the password sign-ins only: a phone code must not stand in
            // for the second factor a user has chosen (their password and that factor still work).
            if (context?.path === PHONE_VERIFY) {
              const user = await options.prisma.user.findUnique({ where: { id: session.userId }, select: { twoFactorEnabled: true } });
              if (user?.twoFactorEnabled === true) {
                throw new APIError("FORBIDDEN", { code: "TWO_FACTOR_REQUIRED", message: "This account uses two-factor authentication: sign in with its password and second factor." });
              }
            }
            return { data: { ...session, secondFactor: context !== null && SECOND_FACTOR_ROUTES.has(context.path) } };
          },
        },
      },
    },
    user: {
      additionalFields: {
        region: { type: "string", required: false, input: false },
        // Soft-deleted accounts (src/admin/eraseUser.ts) have no sessions, whatever their ban fields say.
        deletedAt: { type: "date", required: false, input: false },
      },
    },
    advanced: {
      cookiePrefix: GATEWAY_COOKIE_PREFIX,
      useSecureCookies: options.publicUrl.startsWith("https://"),
      defaultCookieAttributes: { httpOnly: true, sameSite: "lax" },
      ipAddress: { ipAddressHeaders: ["x-gerbang-client-ip"] },
    },
    plugins: [
      // Impersonation stays on for admins: audited, and an impersonation session ends after an hour.
      admin({ ac, roles, defaultRole: "user", adminRoles: ["admin"], impersonationSessionDuration: 3600 }),
      // Only the signed token (set-auth-token) is a credential: the bare token as stored in the session table is not.
      bearer({ requireSignature: true }),
      // TOTP with backup codes (stored encrypted). The roles of auth.twoFactor.requiredForRoles act only
      // in sessions signed in through it (src/auth/principal.ts rolesForCredential).
      // Five wrong codes in a row lock the user's second factor for 15 minutes (whatever the sign-in attempt).
      twoFactor({
        issuer: options.config.auth.twoFactor.issuer,
        backupCodeOptions: { amount: 10, length: 10, storeBackupCodes: "encrypted" },
        accountLockout: { enabled: true, maxFailedAttempts: 5, durationSeconds: 900 },
      }),
      // Sign-in and sign-up by phone with a one-time code. Numbers arrive in E.164 (authRoutes normalises
      // them first; the validator refuses anything else); the gateway checks codes itself (verifyOTP).
      phoneNumber({
        otpLength: OTP_LENGTH,
        expiresIn: OTP_EXPIRES_IN_SEC,
        allowedAttempts: OTP_MAX_ATTEMPTS,
        phoneNumberValidator: (number) => /^\+[1-9]\d{6,14}$/.test(number),
        sendOTP: async ({ phoneNumber: to, code }) => {
          await options.sms.send({ to, text: `${code} is your ${options.config.auth.twoFactor.issuer} sign-in code. It expires in 5 minutes; never share it.`, kind: "sign-in-otp" });
        },
        // Sent only when the number is registered: in the background, so the answer's time cannot say
        // which (a provider call takes longer than auth.uniformResponseMs pads).
        sendPasswordResetOTP: async ({ phoneNumber: to, code }) => {
          void options.sms.send({ to, text: `${code} is your ${options.config.auth.twoFactor.issuer} password reset code. It expires in 5 minutes.`, kind: "reset-password-otp" }).catch((error: unknown) => options.log?.(`sms: a password reset code could not be sent (${error instanceof Error ? error.message : "error"})`));
        },
        verifyOTP: async ({ phoneNumber: number, code }, ctx) => {
          const kind = ctx?.path === "/phone-number/reset-password" ? "reset" : "otp";
          return verifyPhoneOtp(options.prisma, otp, `phone-number-${kind}-${number}`, code);
        },
        signUpOnVerification: { getTempEmail: phoneSignUpEmail, getTempName: () => "" },
      }),
      // Issuance and storage only: src/keys verifies keys on the hot path (the plugin would write to
      // the database per request) and owns rotation; its HTTP endpoints are not exposed (authRoutes).
      apiKey({
        defaultPrefix: API_KEY_PREFIX,
        customKeyGenerator: () => generateApiKey(),
        startingCharactersConfig: { shouldStore: true, charactersLength: API_KEY_PREFIX.length + 4 },
        enableMetadata: true,
        requireName: true,
        rateLimit: { enabled: false },
        keyExpiration: { defaultExpiresIn: null, minExpiresIn: 0, maxExpiresIn: options.config.apiKeys.maxExpiresInDays },
      }),
    ],
  });
}

export type Auth = ReturnType<typeof createAuth>;
