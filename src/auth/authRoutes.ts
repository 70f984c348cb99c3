import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GerbangError } from "../errors/catalogue.ts";
import type { Auth } from "./createAuth.ts";
import type { SessionResolver } from "./sessionResolver.ts";
import { SESSION_COOKIE_NAMES, findSessionCookie } from "./authenticators/sessionCookieAuthenticator.ts";
import type { Principal } from "./principal.ts";
import { originRefusal, originTrusted } from "../pipeline/authenticate.ts";
import type { RateLimitConfig } from "../config/schema.ts";
import type { Bucket, RateLimiter } from "../ratelimit/rateLimiter.ts";
import { authActionOf, authOutcomeOf } from "../audit/authAuditEvents.ts";
import { GATEWAY_COOKIE_PREFIX } from "./gatewayCookies.ts";
import { normalizePhoneNumber, type PhoneNumberRules } from "./phoneNumbers.ts";
import { jsonObjectOf } from "./jsonBody.ts";
import { accountOf, accountOfEmail, authBucketName, authBuckets, unthrottledCredentialRoutes, type AuthEndpoint } from "../ratelimit/authBuckets.ts";

export interface AuthRoutesOptions {
  auth: Auth;
  sessions: SessionResolver;
  publicUrl: string;
  trustedOrigins: ReadonlySet<string>;
  /** Sign-in, password reset and OTP routes count per account and per client address. */
  limiter: RateLimiter;
  rateLimit: RateLimitConfig;
  /** After an admin changed a user (role, ban, sessions): every instance must drop what it cached. */
  onUserChanged?: (userId: string | null) => void;
  /**
   * Counts a request against its caller's own bucket, as a proxied request would be (refused
   * credentials against the client address). Used for every auth route without an auth bucket.
   */
  countCaller: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** auth.uniformResponseMs. */
  uniformResponseMs: number;
  /** Revokes every active API key of a user; the number revoked. For `revokeApiKeys: true` (below). */
  revokeKeysOf?: (userId: string) => Promise<number>;
  /** Phone routes: numbers normalised to E.164 before anything reads them, and the resend cool-down. */
  phone?: PhoneRouteOptions;
  /** Whether the user is soft-deleted: Better Auth's admin may not unban or impersonate them. */
  isDeleted?: (userId: string) => Promise<boolean>;
}

export interface PhoneRouteOptions {
  /** auth.phone.defaultCountry. */
  defaultCountry: string;
  /** auth.phone.allowedCountries, mobiles only. */
  rules: PhoneNumberRules;
  /** auth.phone.maxSendsPerHour: one bucket for every code sent, whoever and wherever to. */
  sendBudget: Bucket;
  claimSlot: (number: string) => Promise<{ claimed: Date } | { retryAfterSec: number }>;
  releaseSlot: (number: string, claimed: Date) => Promise<void>;
}

/** Routes that send a code to the body's number: one per number per cool-down. */
const SENDS_SMS = new Set(["/phone-number/send-otp", "/phone-number/request-password-reset"]);

/** Routes that end sessions of the caller and take the gateway's own `revokeApiKeys: true` as well. */
const KEY_REVOKING = new Set(["/change-password", "/revoke-sessions", "/revoke-other-sessions"]);

/** Whether a JSON body asks for the user's API keys to go too (a field Better Auth ignores). */
function asksToRevokeKeys(body: unknown): boolean {
  return jsonObjectOf(body)?.revokeApiKeys === true;
}

const DROP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "x-gerbang-client-ip", "content-length"]);

/**
 * Better Auth mounted at /api/auth/*. Bodies stay raw buffers (Better Auth parses them; an empty
 * JSON sign-out must reach it). Writes must be JSON, which a cross-site HTML form cannot send,
 * and an Origin, when present, must be trusted.
 */
export async function authRoutes(app: FastifyInstance, options: AuthRoutesOptions): Promise<void> {
  const unthrottled = unthrottledCredentialRoutes(Object.values(options.auth.api) as AuthEndpoint[]);
  if (unthrottled.length > 0) {
    throw new Error(`auth routes that check a password, code or token have no rate-limit bucket (src/ratelimit/authBuckets.ts): ${unthrottled.join(", ")}`);
  }
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.route({
    // Every method is claimed here so that nothing under /api/auth can ever reach an upstream.
    method: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    url: "/api/auth/*",
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      if (request.method !== "GET" && request.method !== "POST") throw new GerbangError("METHOD_NOT_ALLOWED");
      // The plugin's own key endpoints would let a client pick tier and scopes: keys are managed at /api/keys.
      if (request.url.startsWith("/api/auth/api-key/")) throw new GerbangError("ROUTE_NOT_FOUND", { message: "API keys are managed at /api/keys." });
      // Better Auth's deletions are immediate and hard (rows that audit events name vanish, nothing to restore):
      // accounts are soft-deleted through the gateway, which purges them after the grace period.
      const authPath = (request.gerbang.path ?? "").slice("/api/auth".length).split("?")[0] ?? "";
      if (HARD_DELETES.has(authPath)) {
        throw new GerbangError("ROUTE_NOT_FOUND", {
          reason: "SOFT_DELETE_ONLY",
          message: "Accounts are deleted by the gateway: POST /api/account/delete (your own) or gerbang users delete / the admin API's users/delete; the data is purged after the grace period.",
        });
      }
      if (request.method === "POST") {
        const type = request.headers["content-type"] ?? "";
        if (!/^application\/json\s*(;|$)/i.test(type)) throw new GerbangError("UNSUPPORTED_MEDIA_TYPE", { message: "Authentication requests must be sent as application/json." });
        // Better Auth demands a trusted Origin from anything that sends Sec-Fetch-* (browsers, Node's fetch):
        // the same rule here, so the client gets the gateway's explanation rather than MISSING_OR_NULL_ORIGIN.
        const browserLike = Object.keys(request.headers).some((name) => name.startsWith("sec-fetch-"));
        if ((request.headers.origin !== undefined || request.headers.cookie !== undefined || browserLike) && !originTrusted(request, options.trustedOrigins)) {
          throw originRefusal(request);
        }
      }
      const bucketName = authBucketName(authPath);
      const action = authActionOf(request.method, authPath);
      // Set before any refusal (a rate-limited sign-in is audited too); completed from the answer below.
      if (action !== null) request.gerbang.event = { action, target: null, actorId: null };
      // Better Auth restores the admin from its admin_session cookie and fails with a 500 without it
      // (a bearer-only client): say what is missing instead of a 503.
      if (request.method === "POST" && authPath === "/admin/stop-impersonating" && !ADMIN_SESSION_COOKIE.test(request.headers.cookie ?? "")) {
        throw new GerbangError("MALFORMED_REQUEST", {
          reason: "NO_ADMIN_SESSION_COOKIE",
          message: "Stopping an impersonation needs the admin_session cookie set when it started: send the cookies Better Auth set (a bearer token alone cannot end it).",
        });
      }
      // Better Auth's admin routes check the stored role themselves: an admin role this session may not
      // exercise (no second factor) is refused here, as the policy refuses it on every other route.
      if (authPath.startsWith("/admin/") && authPath !== "/admin/stop-impersonating") {
        const adminCredential = sessionCredentialOf(request);
        const adminCaller = adminCredential === null ? null : await principalOf(options.sessions, adminCredential);
        if (adminCaller?.withheldRoles?.includes("admin") === true) {
          throw new GerbangError("FORBIDDEN", { reason: "SECOND_FACTOR_REQUIRED", message: "Better Auth's admin routes need the admin role, which acts only with a second factor: sign in with TOTP or a backup code." });
        }
      }
      // A deleted account's ban is what keeps it out until the purge: only a restore lifts it.
      if (request.method === "POST" && DELETED_REFUSED.has(authPath) && options.isDeleted !== undefined) {
        const userId = userIdOf(request.body);
        if (userId !== null && (await options.isDeleted(userId))) {
          throw new GerbangError("OPERATION_REFUSED", { message: "The account is deleted: gerbang users restore (or the admin API's users/restore) undoes a deletion during its grace period." });
        }
      }
      // Addresses in .invalid are the gateway's own placeholders (phone sign-ups, purged accounts): a
      // client taking one would block the number's sign-up or pose as a tombstone.
      if (request.method === "POST" && EMAIL_SETTING.has(authPath) && reservedEmailIn(request.body)) {
        throw new GerbangError("MALFORMED_REQUEST", { reason: "RESERVED_EMAIL", message: "Addresses in the .invalid domain are reserved." });
      }
      // Every phone route reads the number in E.164: one spelling per number for Better Auth, the
      // account buckets and the cool-down alike ("0812…" and "+62 812-…" are one account).
      let smsNumber: string | null = null;
      if (request.method === "POST" && options.phone !== undefined && authPath.includes("phone-number")) {
        const normalized = normalizedPhoneBody(request.body, options.phone.defaultCountry, options.phone.rules);
        if (normalized !== null) {
          request.body = normalized.body;
          if (SENDS_SMS.has(authPath)) smsNumber = normalized.number;
        }
      }
      let buckets: Bucket[] = [];
      const countedAt = Date.now();
      const revoking = request.method === "POST" && REVOKING.has(authPath);
      const ownAccount = OWN_ACCOUNT.test(authPath);
      // The caller's session, where it matters: the one a revoking route ends, or whose password is checked.
      const credential = revoking || ownAccount ? sessionCredentialOf(request) : null;
      // Looked up at most once (delete-user and revoke-session are both own-account and revoking).
      let caller: Promise<Principal | null> | undefined;
      const callerOf = (found: Record<string, string>): Promise<Principal | null> => (caller ??= principalOf(options.sessions, found));
      if (bucketName !== null) {
        const found = accountOf(authPath, request.body);
        // Better Auth may still make sense of a body we cannot read (and then try the password): refuse it here.
        if ("unreadable" in found) throw new GerbangError("INVALID_JSON_BODY", { message: "The request body must be a JSON object." });
        // The signed-in caller's own password is checked: their account is the bucket, whatever the body
        // says (Better Auth ignores unknown fields), and the same bucket as their sign-in's.
        let account = found.account;
        if (ownAccount) {
          const principal = credential === null ? null : await callerOf(credential);
          const email = principal?.attributes.email;
          account = typeof email === "string" ? accountOfEmail(email) : null;
        }
        buckets = authBuckets(options.rateLimit, bucketName, request.ip, account);
        // Messages cost money: besides each number and address, all of them together have a budget
        // (an attacker rotating numbers and addresses still meets it).
        if (smsNumber !== null && options.phone !== undefined) buckets.push(options.phone.sendBudget);
        await options.limiter.enforce(request, reply, buckets);
      } else {
        // Everything else costs a session lookup too: it counts against the caller, as a proxied request.
        await options.countCaller(request, reply);
      }

      // Claimed after the buckets counted the attempt, given back below if no message went out.
      let smsSlot: Date | null = null;
      if (smsNumber !== null && options.phone !== undefined) {
        let slot: Awaited<ReturnType<PhoneRouteOptions["claimSlot"]>>;
        try {
          slot = await options.phone.claimSlot(smsNumber);
        } catch (error) {
          request.log.error({ err: error }, "sms cool-down could not be read");
          throw new GerbangError("DEPENDENCY_UNAVAILABLE", { reason: "AUTHENTICATION_BACKEND" });
        }
        if ("retryAfterSec" in slot) {
          throw new GerbangError("RATE_LIMITED", {
            reason: "OTP_RESEND_COOLDOWN",
            message: `A code was sent to this number moments ago: wait ${slot.retryAfterSec} s before asking for another.`,
            headers: { "retry-after": String(slot.retryAfterSec) },
          });
        }
        smsSlot = slot.claimed;
      }
      const releaseSlot = async (): Promise<void> => {
        if (smsSlot !== null && smsNumber !== null) await options.phone?.releaseSlot(smsNumber, smsSlot).catch(() => undefined);
      };

      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined || DROP.has(name)) continue;
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      headers.set("x-gerbang-client-ip", request.ip);

      // The revoking caller's user is found first (from the cache, or one lookup on this rare path), and
      // after success every instance forgets that user's cached sessions at once.
      const revokedUser = revoking && credential !== null ? ((await callerOf(credential))?.userId ?? null) : null;
      if (revoking && credential !== null) options.sessions.forget(credential);
      const body = request.body instanceof Buffer && request.body.length > 0 ? new Uint8Array(request.body) : undefined;
      let response: Response;
      try {
        response = await options.auth.handler(
          new Request(new URL(request.url, options.publicUrl), { method: request.method, headers, ...(body === undefined ? {} : { body }) }),
        );
      } catch (error) {
        await releaseSlot();
        request.log.error({ err: error }, "auth handler failed");
        throw new GerbangError("DEPENDENCY_UNAVAILABLE", { reason: "AUTHENTICATION_BACKEND" });
      }
      // Better Auth's own 5xx bodies may name internals (and are not in our catalogue): fail closed with ours.
      if (response.status >= 400) await releaseSlot();
      if (response.status >= 500) {
        request.log.error({ status: response.status }, "auth handler answered with a server error");
        throw new GerbangError("DEPENDENCY_UNAVAILABLE", { reason: "AUTHENTICATION_BACKEND" });
      }
      // A refused attempt (wrong password, unknown account) counts more than a success.
      const weight = bucketName === null ? 1 : options.rateLimit.auth[bucketName].failureWeight;
      if (weight > 1 && response.status >= 400) await Promise.all(buckets.map((b) => options.limiter.penalize(b, weight - 1, countedAt)));
      if (request.method === "POST" && request.url.startsWith("/api/auth/admin/") && response.status < 300) {
        options.onUserChanged?.(userIdOf(request.body));
      }
      // Sessions ended by a token rather than a session (a reset link, a deletion link): whose they were is
      // not known here, so every instance forgets every cached session (stale-if-error must not revive them).
      if (response.status < 400 && TOKEN_REVOKING.test(authPath)) options.onUserChanged?.(null);
      let keysRevoked: number | null = null;
      if (revoking && credential !== null && response.status < 300) {
        // Again after the deletion: a lookup that started before it may have cached the session meanwhile.
        options.sessions.forget(credential);
        // A password changed or sessions ended because the account may be compromised: its keys too, when asked.
        if (revokedUser !== null && KEY_REVOKING.has(authPath) && options.revokeKeysOf !== undefined && asksToRevokeKeys(request.body)) {
          keysRevoked = await options.revokeKeysOf(revokedUser);
        }
        if (revokedUser !== null) options.onUserChanged?.(revokedUser);
      }
      // Whether the account exists changes what these routes do (a user created, a mail queued), never when they answer.
      if (UNIFORM_TIMING.test(authPath) || (response.status >= 400 && UNIFORM_WHEN_REFUSED.test(authPath))) {
        const wait = countedAt + options.uniformResponseMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const payload = Buffer.from(await response.arrayBuffer());
      if (action !== null) {
        const outcome = authOutcomeOf(action, response.status, payload);
        const callerId = request.gerbang.principal?.userId ?? (caller === undefined ? null : ((await caller)?.userId ?? null));
        const adminTarget = authPath.startsWith("/admin/") ? userIdOf(request.body) : null;
        request.gerbang.event = {
          action,
          actorId: outcome.userId ?? callerId,
          target: adminTarget ?? outcome.userId ?? (ownAccount || revoking ? callerId : null),
          ...(outcome.code === null ? {} : { reason: outcome.code }),
        };
      }
      reply.code(response.status);
      response.headers.forEach((value, name) => {
        if (name !== "set-cookie" && name !== "content-length") void reply.header(name, value);
      });
      const cookies = response.headers.getSetCookie();
      // The gateway's own lookup (counting the caller) may have slid the session: the browser needs that cookie.
      const renewed = request.gerbang.refreshCookies;
      if (renewed !== undefined && !cookies.some((c) => SESSION_COOKIE_NAMES.some((n) => c.startsWith(`${n}=`)))) cookies.push(...renewed);
      if (cookies.length > 0) void reply.header("set-cookie", cookies);
      void reply.header("cache-control", "no-store");
      if (keysRevoked !== null) void reply.header("x-gerbang-keys-revoked", String(keysRevoked));
      return reply.send(payload);
    },
  });
}

/**
 * The JSON body with its `phoneNumber` in E.164, and that number; null when there is none to read (a
 * body Better Auth refuses itself, or one the buckets refuse as unreadable). A number that is not
 * valid is refused here, with libphonenumber's reason.
 */
function normalizedPhoneBody(body: unknown, defaultCountry: string, rules: PhoneNumberRules): { body: Buffer; number: string } | null {
  const parsed = jsonObjectOf(body);
  const raw = parsed?.phoneNumber;
  if (typeof raw !== "string") return null;
  const number = normalizePhoneNumber(raw, defaultCountry, rules);
  if ("refused" in number) {
    throw new GerbangError("INVALID_PHONE_NUMBER", { reason: number.refused, message: `Not a phone number a code can be sent to (${number.refused}): write it with its country code, e.g. +62 812 3456 7890.` });
  }
  return { body: Buffer.from(JSON.stringify({ ...parsed, phoneNumber: number.e164 })), number: number.e164 };
}

/** Routes whose body sets a user's address. */
const EMAIL_SETTING = new Set(["/sign-up/email", "/change-email", "/admin/create-user", "/admin/update-user"]);

/** Whether a JSON body sets an address (email, newEmail, data.email) in the reserved .invalid domain. */
function reservedEmailIn(body: unknown): boolean {
  const fields = jsonObjectOf(body) as { email?: unknown; newEmail?: unknown; data?: { email?: unknown } } | null;
  return [fields?.email, fields?.newEmail, fields?.data?.email].some((v) => typeof v === "string" && /\.invalid\.?\s*$/i.test(v));
}

/** Better Auth's admin routes that would let a deleted account act again. */
const DELETED_REFUSED = new Set(["/admin/unban-user", "/admin/impersonate-user"]);

/** Better Auth's routes that delete a user outright. */
const HARD_DELETES = new Set(["/delete-user", "/delete-user/callback", "/admin/remove-user"]);

/** The admin plugin's cookie holding the impersonating admin's own session (any cookie prefix spelling). */
const ADMIN_SESSION_COOKIE = new RegExp(`(?:^|;)\\s*(?:__secure-|__host-)?${GATEWAY_COOKIE_PREFIX.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.admin_session=[^;\\s]`, "i");

/** Routes whose work depends on whether the account exists: answered at a uniform time. */
const UNIFORM_TIMING = /^\/(?:sign-up\/email|request-password-reset|forget-password|send-verification-email|(?:phone-number|email-otp)\/(?:request-password-reset|forget-password|send-otp|send-verification-otp))$/;

/** Routes that check the signed-in caller's own password or session: the caller is the account. */
const OWN_ACCOUNT = /^\/(?:verify-password|change-password|delete-user|revoke-session|change-email|link-social|email-otp\/(?:request-email-change|change-email)|two-factor\/(?:enable|disable|get-totp-uri|generate-backup-codes|view-backup-codes))$/;

/** Routes that end sessions by a token in the request (a reset or deletion link), not by the caller's session. */
const TOKEN_REVOKING = /^\/(?:reset-password|delete-user\/callback|phone-number\/reset-password)$/;

/** A refused sign-in: an existing account verifies the password, an unknown one does not quite the same work. */
const UNIFORM_WHEN_REFUSED = /^\/sign-in\//;

/**
 * Better Auth routes after which the caller's session, or all of its user's sessions, no longer exist
 * (two-factor enrolment replaces the caller's session with one that has the second factor; its user's
 * cached sessions are forgotten everywhere, so their withheld roles are recomputed).
 */
const REVOKING = new Set(["/sign-out", "/revoke-session", "/revoke-sessions", "/revoke-other-sessions", "/change-password", "/delete-user", "/two-factor/enable", "/two-factor/disable", "/two-factor/verify-totp", "/two-factor/verify-backup-code"]);

/**
 * The session credential of a revoking or own-account request, in the form the resolver caches it
 * under. With a bearer and a session cookie, or two session cookies, the gateway cannot know which
 * session Better Auth will use (end, or check the password of), so it could forget and publish the
 * wrong one, or count the wrong account: such a request is refused, as the proxy refuses it.
 */
function sessionCredentialOf(request: FastifyRequest): Record<string, string> | null {
  const authorization = request.headers.authorization;
  const cookie = findSessionCookie(request.headers.cookie);
  if (cookie === "!" || (authorization !== undefined && cookie !== null)) {
    throw new GerbangError("AMBIGUOUS_CREDENTIALS", { reason: cookie === "!" ? "TWO_SESSION_COOKIES" : "BEARER_AND_COOKIE" });
  }
  if (typeof authorization === "string") {
    const match = /^Bearer +(\S+)$/i.exec(authorization.trim());
    if (match !== null) return { authorization: `Bearer ${match[1]}` };
  }
  return cookie !== null ? { cookie } : null;
}

async function principalOf(sessions: SessionResolver, credential: Record<string, string>): Promise<Principal | null> {
  try {
    const result = await sessions.resolve(credential);
    return result.kind === "authenticated" ? result.principal : null;
  } catch {
    return null; // the handler will fail the same way and answer 503
  }
}

function userIdOf(body: unknown): string | null {
  const userId = jsonObjectOf(body)?.userId;
  return typeof userId === "string" ? userId : null;
}
