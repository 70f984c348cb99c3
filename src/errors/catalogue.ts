/**
 * Every error the gateway itself answers with, defined once. Codes are part of the public contract:
 * never rename one; add a new code instead. The README's error table is checked against this list.
 */
export const ERRORS = {
  BAD_REQUEST_TARGET: { status: 400, message: "The request target is not in canonical form." , doc: "The request target is not in [canonical form](security.md#canonical-path-form)." },
  MALFORMED_REQUEST: { status: 400, message: "The request is malformed." , doc: "The request is malformed (unparsable HTTP, ambiguous framing, other client errors); reason `MISSING_HOST` for an HTTP/1.1 request without `Host`, `INVALID_HOST` for a second `Host` or one that is not `host[:port]` (RFC 9112 §3.2), `METHOD_OVERRIDE` for a method-override parameter in the query or a form body, `OBFUSCATED_FRAMING_HEADER` for `Transfer_Encoding`, `Content_Length` and the like; `CONTENT_LENGTH_MISMATCH` for a body read whole that is not as long as it declared, `BODY_ABORTED` for one that broke off; `NO_ADMIN_SESSION_COOKIE` for `/api/auth/admin/stop-impersonating` without the `admin_session` cookie Better Auth set when the impersonation started; `RESERVED_EMAIL` for a sign-up, `change-email` or admin create/update that sets an address in the `.invalid` domain (the gateway's placeholders for phone sign-ups and purged accounts); `UNSUPPORTED_UPGRADE` for an `Upgrade` the gateway does not relay (anything but a WebSocket `GET` on a proxied path, any upgrade while `websocket.enabled` is off, a WebSocket on an endpoint with response masking); `INVALID_WEBSOCKET_HANDSHAKE` for a WebSocket `GET` without a valid `Sec-WebSocket-Key` or with a `Sec-WebSocket-Version` other than 13." },
  INVALID_JSON_BODY: { status: 400, message: "The request body is not valid JSON." , doc: "The policy needed the body, and it is not valid UTF-8 JSON or not a JSON object; or a rate-limited `/api/auth` route (sign-in, password reset, OTP) got a body that is not a JSON object." },
  INVALID_PHONE_NUMBER: { status: 400, message: "The phone number is not valid." , doc: "A phone route of `/api/auth` got a `phoneNumber` that is not a valid number (read as E.164, or as a number of `auth.phone.defaultCountry` without a country code); the reason is libphonenumber's: `NOT_A_NUMBER`, `INVALID_COUNTRY`, `TOO_SHORT`, `TOO_LONG`, `INVALID_LENGTH`, `NOT_VALID` (no such range), `HAS_EXTENSION`; or the deployment's: `COUNTRY_NOT_ALLOWED` (`auth.phone.allowedCountries`), `NOT_MOBILE`. Nothing is sent or counted." },
  API_KEY_IN_QUERY: { status: 400, message: "API keys are accepted only in the x-api-key header; this one must be treated as leaked." , doc: "The query string carries an API key (a parameter named like `api_key`/`apikey`/`x-api-key`, or any value containing `gb_live_`). Nothing is forwarded or logged; treat the key as leaked and rotate it." },
  AMBIGUOUS_CREDENTIALS: { status: 400, message: "The request carries more than one credential." , doc: "More than one credential: a cookie plus a bearer token, an API key plus anything, or a duplicated `authorization`/`cookie`/`x-api-key` header. On `/api/auth` routes that end sessions (sign-out, revoke-*, change-password, delete-user): reason `BEARER_AND_COOKIE` or `TWO_SESSION_COOKIES`, since the gateway could not tell which session Better Auth ends." },
  UNAUTHENTICATED: { status: 401, message: "Authentication is required." , doc: "An anonymous request that the policy does not allow. Sends `WWW-Authenticate`." },
  INVALID_CREDENTIALS: { status: 401, message: "The credentials are invalid, expired or revoked." , doc: "The credential is invalid, expired, revoked or of an unsupported scheme; an API key that is malformed, fails its checksum, is unknown, revoked, expired (or past its rotation grace) or whose owner is banned." },
  FORBIDDEN: { status: 403, message: "The policy does not allow this request." , doc: "The policy does not allow this request (see `reason`)." },
  ORIGIN_NOT_TRUSTED: { status: 403, message: "The request's origin is not trusted." , doc: "A cookie-authenticated write, or an auth `POST`, whose `Origin`/`Referer` is not trusted." },
  ROUTE_NOT_FOUND: { status: 404, message: "No upstream serves this path." , doc: "No upstream serves this path (also Better Auth's own `/api/auth/api-key/*` routes: keys are managed at `/api/keys`; and its hard deletions `/api/auth/delete-user`, `/api/auth/delete-user/callback` and `/api/auth/admin/remove-user`, reason `SOFT_DELETE_ONLY`: accounts are [soft-deleted and purged later](operations.md#account-controls))." },
  KEY_NOT_FOUND: { status: 404, message: "No such API key, or not one of yours." , doc: "`/api/keys/<id>`: no such key, or not one the caller may manage." },
  RESOURCE_NOT_FOUND: { status: 404, message: "The resource does not exist." , doc: "The resolver answered `404` for the resource." },
  OPERATION_REFUSED: { status: 422, message: "The operation was refused." , doc: "The admin API refused an operation with a message that says why: a policy version that is not valid or fails its tests, a draft, nothing to roll back to, an unknown user." },
  METHOD_NOT_ALLOWED: { status: 405, message: "The gateway does not accept this method here." , doc: "A method the gateway never forwards (e.g. `TRACE`, `PROPFIND`, `CONNECT`), or anything but GET/POST on `/api/auth/*`." },
  REQUEST_TIMEOUT: { status: 408, message: "The request was not received in time." , doc: "The client did not send its header block within `server.headersTimeoutMs`, or its whole request within `server.requestTimeoutMs` (slow clients); the connection is closed." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "The content type is not supported here." , doc: "The policy needed a JSON body and got another content type, or an auth `POST` was not `application/json`." },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large." , doc: "The body exceeds `server.bodyLimitBytes` (or the upstream's `upstreams[].bodyLimitBytes`), or a body the gateway reads whole exceeds `server.bufferedBodyLimitBytes`. A declared length is refused before the body is read; a streamed body where it crosses the limit (the upstream's request is aborted; the connection is closed)." },
  RATE_LIMITED: { status: 429, message: "Too many requests; retry after the number of seconds in Retry-After." , doc: "The caller's bucket is used up (see `reason` and [Rate limits](api-keys-and-rate-limits.md#rate-limits)). Carries `Retry-After` (seconds) and `RateLimit-Limit`, `RateLimit-Remaining: 0`, `RateLimit-Reset`. Reason `OTP_RESEND_COOLDOWN`: a code went to this number less than `auth.phone.resendCooldownSec` ago (`Retry-After` only). Reason `OTP_GLOBAL`: the deployment sent `auth.phone.maxSendsPerHour` codes this hour." },
  CONNECTION_LIMIT: { status: 429, message: "Too many open WebSocket connections; close one before opening another." , doc: "A WebSocket handshake over the open connections one user or key may hold (reason `PER_PRINCIPAL`, `websocket.maxPerPrincipal`) or one client address (reason `PER_ADDRESS`, `websocket.maxPerAddress`) on this instance." },
  HEADERS_TOO_LARGE: { status: 431, message: "The request headers are too large." , doc: "The headers exceed `server.maxHeaderBytes`, or there are more than `server.maxHeaderCount` header fields (reason `TOO_MANY_HEADERS`)." },
  INTERNAL_ERROR: { status: 500, message: "The gateway failed to handle the request." , doc: "The gateway failed to handle the request. Details are only logged." },
  UPSTREAM_UNREACHABLE: { status: 502, message: "The upstream could not be reached." , doc: "The upstream could not be reached, or (reason `INVALID_UPSTREAM_RESPONSE`) answered something the gateway cannot pass on, or (reason `UPGRADE_REFUSED`) answered a WebSocket handshake with something other than `101`." },
  RESOLVER_FAILED: { status: 502, message: "The upstream did not answer the attribute lookup." , doc: "The upstream's attribute endpoint failed or answered something other than 200/404; or (reason `DATABASE`) the [Prisma resolver](policies.md#prisma-resolver)'s query of the business database failed." },
  NOT_READY: { status: 503, message: "The gateway is not ready." , doc: "`/readyz` is failing (a critical check did not pass), or the gateway is shutting down (reason `SHUTTING_DOWN`)." },
  OVERLOADED: { status: 503, message: "The gateway is overloaded; retry after the number of seconds in Retry-After." , doc: "The gateway sheds load (see [Overload and faults](operations.md#overload-and-faults)); reason `EVENT_LOOP_DELAY`, `EVENT_LOOP_UTILIZATION`, `HEAP`, `RSS` (`server.overload`), `CONNECTIONS` (over `server.maxConnections`; the connection is closed) `BODY_BUDGET` (over `server.maxInFlightBodyBytes`) or `BODY_BUDGET_ADDRESS` (over `server.maxInFlightBodyBytesPerAddress`): a body read whole is refused before it is read, a streamed one when the part that does not fit arrives. Carries `Retry-After`." },
  RESPONSE_NOT_MASKABLE: { status: 502, message: "The upstream's answer could not be reduced to the fields you may read, so it is not passed on." , doc: "An endpoint with `response: { fields: masked }` got an answer with a body (of any status) the gateway could not mask, and never passes on unmasked: reason `TOO_LARGE` (over the endpoint's `maxBytes`), `NOT_JSON` (another content type), `ENCODED` (a `Content-Encoding`), `INVALID_JSON`, `NOT_RECORDS` (not an object or an array of objects, or no `at` property), `PARTIAL` (a `206`) or `BODY_FAILED` (the upstream's body broke off)." },
  UPSTREAM_UNAVAILABLE: { status: 503, message: "The upstream is failing; the gateway is not sending it requests for now. Retry after the number of seconds in Retry-After." , doc: "The upstream's circuit is open (reason `CIRCUIT_OPEN`): it failed `circuitBreaker.failureThreshold` times in a row and the gateway is not sending it requests for now. Carries `Retry-After`." },
  DEPENDENCY_UNAVAILABLE: { status: 503, message: "A service the gateway depends on is unavailable." , doc: "The session store (database) could not be asked (reason `AUTHENTICATION_BACKEND`); the request is refused, never treated as anonymous. Or a rate-limit bucket with `onRedisDown: closed` (by default the sign-in, password-reset and OTP buckets) could not reach Redis (reason `RATE_LIMIT_BACKEND`)." },
  UPSTREAM_TIMEOUT: { status: 504, message: "The upstream did not answer in time." , doc: "The upstream (or its attribute lookup) did not answer in time." },
} as const satisfies Record<string, { status: number; message: string; doc: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Thrown anywhere in the pipeline; the error handler renders it with the catalogue's status. */
export class GerbangError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** A stable reason id (403s name the policy reason), safe to show to the client. */
  readonly reason: string | undefined;
  readonly headers: Record<string, string>;
  /** Shown only where a caller may see it: policy debugging details for the roles in policy.denialDetailsFor. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, options: { reason?: string; message?: string; headers?: Record<string, string>; details?: Record<string, unknown> } = {}) {
    super(options.message ?? ERRORS[code].message);
    this.name = "GerbangError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.reason = options.reason;
    this.headers = options.headers ?? {};
    this.details = options.details;
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string; reason?: string; details?: Readonly<Record<string, unknown>> };
}

export function errorBody(error: GerbangError, requestId: string): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message, requestId } };
  if (error.reason !== undefined) body.error.reason = error.reason;
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}
