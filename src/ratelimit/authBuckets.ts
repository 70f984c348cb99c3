import { createHash } from "node:crypto";
import type { AuthBucketName, RateLimitConfig } from "../config/schema.ts";
import { clientAddress } from "./apiBucket.ts";
import type { Bucket } from "./rateLimiter.ts";
import { jsonObjectOf } from "../auth/jsonBody.ts";

/**
 * Better Auth routes (after /api/auth) that get the stricter buckets. Routes of plugins that are not
 * installed yet (phone number, email OTP, two-factor) are listed so that adding a plugin can never
 * add an unthrottled way to guess a password or send messages.
 */
const ROUTES: ReadonlyArray<[RegExp, AuthBucketName]> = [
  // Sends a message, so it counts as otp, not as a sign-in attempt: the first match wins.
  [/^\/sign-in\/magic-link$/, "otp"],
  [/^\/sign-in\//, "signIn"],
  [/^\/two-factor\/send-otp$/, "otp"],
  [/^\/two-factor\//, "signIn"],
  // A signed-in caller's password or session token is checked here: each is a guessing oracle too.
  [/^\/(?:verify-password|change-password|revoke-session|link-social)$/, "signIn"],
  [/^\/delete-user(?:\/callback)?$/, "signIn"],
  [/^\/(?:verify-email|change-email)$/, "otp"],
  [/^\/(?:request-password-reset|forget-password|reset-password)(?:\/|$)/, "passwordReset"],
  [/^\/(?:phone-number|email-otp)\/(?:request-password-reset|reset-password|forget-password)(?:\/|$)/, "passwordReset"],
  [/^\/sign-up\//, "otp"],
  [/^\/send-verification-email$/, "otp"],
  [/^\/(?:phone-number|email-otp)\/verify/, "signIn"],
  [/^\/phone-number\/send-otp$/, "otp"],
  [/^\/email-otp\/(?:send-verification-otp|request-email-change)$/, "otp"],
  [/^\/email-otp\/(?:check-verification-otp|change-email)$/, "signIn"],
  [/^\/magic-link\/verify$/, "signIn"],
  // OAuth callbacks exchange a code (social providers, generic OAuth): throttled per address.
  [/^\/(?:callback|oauth2\/callback)\//, "signIn"],
];

const REASON: Record<AuthBucketName, string> = { signIn: "SIGN_IN", passwordReset: "PASSWORD_RESET", otp: "OTP" };

/** `path` is the canonical path below /api/auth, e.g. `/sign-in/email`. */
export function authBucketName(path: string): AuthBucketName | null {
  return ROUTES.find(([pattern]) => pattern.test(path))?.[1] ?? null;
}

/** Which body field names the account on a route: the one Better Auth reads there. */
function accountField(path: string): "email" | "phoneNumber" | "username" {
  if (path.includes("phone-number")) return "phoneNumber";
  if (path.startsWith("/sign-in/username")) return "username";
  return "email";
}

export type AccountOf = { account: string | null } | { unreadable: true };

/**
 * The account an attempt is about, from the JSON body, read the way Better Auth reads it (UTF-8,
 * BOM stripped, the route's own field), case-folded and hashed (no addresses or numbers in Redis).
 * A body that is not a JSON object is `unreadable`: it must not reach Better Auth uncounted.
 */
export function accountOf(path: string, body: unknown): AccountOf {
  if (!(body instanceof Buffer) || body.length === 0) return { account: null };
  const parsed = jsonObjectOf(body, { fatal: true });
  if (parsed === null) return { unreadable: true };
  const field = accountField(path);
  const value = parsed[field];
  if (typeof value !== "string" || value.trim() === "") return { account: null };
  const folded = field === "phoneNumber" ? value.replace(/[\s().-]/g, "") : value.trim().toLowerCase();
  return { account: hashAccount(field, folded) };
}

const hashAccount = (field: string, folded: string): string => createHash("sha256").update(`${field}:${folded}`).digest("base64url").slice(0, 32);

/** A signed-in caller's account, for routes that check their own password: the same bucket as their sign-in by email. */
export function accountOfEmail(email: string): string {
  return hashAccount("email", email.trim().toLowerCase());
}

/** The shape of a Better Auth endpoint that matters here: its path, methods and input fields. */
export interface AuthEndpoint {
  path?: string;
  options?: { method?: string | string[]; body?: unknown; query?: unknown; metadata?: { SERVER_ONLY?: boolean } };
}

/** Input fields whose value Better Auth checks against something secret: a password, a code, a token. */
const SECRET_FIELDS = new Set(["password", "currentPassword", "token", "code", "otp", "backupCode", "sessionToken", "idToken"]);

interface SchemaDef {
  type?: string;
  shape?: object;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
  left?: unknown;
  right?: unknown;
  options?: unknown[];
}

/** The input fields of a zod 4 schema, through optional/nullable/default wrappers, pipes, intersections and unions. */
function fieldsOf(schema: unknown, depth = 0): string[] {
  if (typeof schema !== "object" || schema === null || depth > 8) return [];
  const direct = (schema as { shape?: unknown }).shape;
  if (typeof direct === "object" && direct !== null) return Object.keys(direct);
  const def = (schema as { _zod?: { def?: SchemaDef } })._zod?.def;
  if (def === undefined) return [];
  const inner = [def.innerType, def.in, def.out, def.left, def.right, ...(def.options ?? [])];
  return [...(def.shape === undefined ? [] : Object.keys(def.shape)), ...inner.flatMap((s) => fieldsOf(s, depth + 1))];
}

/**
 * Endpoints that check a password, code or token but would get no auth bucket: derived from what
 * Better Auth registered, so a plugin added later cannot bring an unthrottled oracle with it. Admin
 * routes take passwords as data to set, not to check, and server-only endpoints have no route.
 */
export function unthrottledCredentialRoutes(endpoints: Iterable<AuthEndpoint>): string[] {
  const missing: string[] = [];
  for (const endpoint of endpoints) {
    const path = endpoint.path;
    if (path === undefined || endpoint.options?.metadata?.SERVER_ONLY === true || path.startsWith("/admin/")) continue;
    const secret =
      /\/:token(?:\/|$)/.test(path) || /^\/(?:two-factor|phone-number|email-otp)\//.test(path) || [...fieldsOf(endpoint.options?.body), ...fieldsOf(endpoint.options?.query)].some((f) => SECRET_FIELDS.has(f));
    if (secret && authBucketName(path.replace(/:[A-Za-z]+/g, "x")) === null) missing.push(path);
  }
  return missing;
}

/** Per address first (it refuses floods without touching the account's bucket), then per account. */
export function authBuckets(config: RateLimitConfig, name: AuthBucketName, ip: string, account: string | null): Bucket[] {
  const spec = config.auth[name];
  const reason = REASON[name];
  const buckets: Bucket[] = [
    { reason: `${reason}_ADDRESS`, key: `auth:${name}:ip:${clientAddress(ip, config.ipv6Prefix)}`, ...spec.perAddress, mode: spec.onRedisDown, strict: true },
  ];
  if (account !== null) buckets.push({ reason: `${reason}_ACCOUNT`, key: `auth:${name}:acct:${account}`, ...spec.perAccount, mode: spec.onRedisDown, strict: true, quiet: true });
  return buckets;
}
