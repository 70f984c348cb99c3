/**
 * The audit action of a Better Auth route (POST unless noted), or none for routes that change
 * nothing (get-session, list-sessions…). A refused attempt is audited under the same action with
 * allowed false and Better Auth's code as the reason.
 */
const AUTH_ACTIONS: Readonly<Record<string, string>> = {
  "/sign-up/email": "auth.sign_up",
  "/sign-in/email": "auth.sign_in",
  "/sign-in/email-otp": "auth.sign_in",
  "/sign-in/phone-number": "auth.sign_in",
  "/sign-out": "auth.sign_out",
  "/request-password-reset": "auth.password_reset_requested",
  "/forget-password": "auth.password_reset_requested",
  "/reset-password": "auth.password_reset",
  "/change-password": "auth.password_changed",
  "/send-verification-email": "auth.verification_sent",
  "GET /verify-email": "auth.email_verified",
  "/email-otp/send-verification-otp": "auth.otp_sent",
  "/email-otp/verify-email": "auth.otp_verified",
  "/phone-number/send-otp": "auth.otp_sent",
  "/phone-number/verify": "auth.otp_verified",
  "/revoke-session": "session.revoked",
  "/revoke-sessions": "session.revoked",
  "/revoke-other-sessions": "session.revoked",
  "/delete-user": "user.deleted",
  "GET /delete-user/callback": "user.deleted",
  "/update-user": "user.attributes_changed",
  "/admin/create-user": "user.created",
  "/admin/set-role": "user.role_changed",
  "/admin/update-user": "user.attributes_changed",
  "/admin/set-user-password": "user.password_set",
  "/admin/ban-user": "user.banned",
  "/admin/unban-user": "user.unbanned",
  "/admin/remove-user": "user.deleted",
  "/admin/impersonate-user": "user.impersonation_started",
  "/admin/stop-impersonating": "user.impersonation_stopped",
  "/admin/revoke-user-session": "session.revoked",
  "/admin/revoke-user-sessions": "session.revoked",
  "/two-factor/enable": "auth.two_factor_enrolment_started",
  "/two-factor/verify-totp": "auth.two_factor_verified",
  "/two-factor/verify-backup-code": "auth.two_factor_verified",
  "/two-factor/disable": "auth.two_factor_disabled",
  "/two-factor/generate-backup-codes": "auth.backup_codes_generated",
};

export function authActionOf(method: string, authPath: string): string | null {
  return AUTH_ACTIONS[method === "GET" ? `GET ${authPath}` : authPath] ?? null;
}

/** Routes whose successful answer names the user who signed in or up (the event's actor). */
const NAMES_ITS_USER = new Set(["auth.sign_in", "auth.sign_up", "auth.two_factor_verified", "auth.otp_verified"]);

export interface AuthOutcome {
  /** The signed-in (or signed-up) user, read from Better Auth's answer. */
  userId: string | null;
  /** Better Auth's error code of a refusal (INVALID_EMAIL_OR_PASSWORD…), printable and bounded. */
  code: string | null;
}

/** Reads only what an event needs from Better Auth's JSON answer: an id, or an error code. */
export function authOutcomeOf(action: string, status: number, body: Buffer): AuthOutcome {
  const none = { userId: null, code: null };
  if (body.length === 0 || body.length > 65_536 || (status < 400 && !NAMES_ITS_USER.has(action))) return none;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return none;
  }
  if (typeof parsed !== "object" || parsed === null) return none;
  const record = parsed as { user?: { id?: unknown }; code?: unknown };
  if (status < 400) return { userId: typeof record.user?.id === "string" ? record.user.id.slice(0, 200) : null, code: null };
  return { userId: null, code: typeof record.code === "string" && /^[A-Z0-9_]{1,64}$/.test(record.code) ? record.code : null };
}
