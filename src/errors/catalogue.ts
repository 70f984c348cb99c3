/**
 * Every error the gateway itself answers with, defined once. Codes are part of the public contract:
 * never rename one; add a new code instead. The README's error table is checked against this list.
 */
export const ERRORS = {
  BAD_REQUEST_TARGET: { status: 400, message: "The request target is not in canonical form." },
  MALFORMED_REQUEST: { status: 400, message: "The request is malformed." },
  INVALID_JSON_BODY: { status: 400, message: "The request body is not valid JSON." },
  API_KEY_IN_QUERY: { status: 400, message: "API keys are accepted only in the x-api-key header; this one must be treated as leaked." },
  AMBIGUOUS_CREDENTIALS: { status: 400, message: "The request carries more than one credential." },
  UNAUTHENTICATED: { status: 401, message: "Authentication is required." },
  INVALID_CREDENTIALS: { status: 401, message: "The credentials are invalid, expired or revoked." },
  FORBIDDEN: { status: 403, message: "The policy does not allow this request." },
  ORIGIN_NOT_TRUSTED: { status: 403, message: "The request's origin is not trusted." },
  ROUTE_NOT_FOUND: { status: 404, message: "No upstream serves this path." },
  KEY_NOT_FOUND: { status: 404, message: "No such API key, or not one of yours." },
  RESOURCE_NOT_FOUND: { status: 404, message: "The resource does not exist." },
  METHOD_NOT_ALLOWED: { status: 405, message: "The gateway does not accept this method here." },
  REQUEST_TIMEOUT: { status: 408, message: "The request was not received in time." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "The content type is not supported here." },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large." },
  RATE_LIMITED: { status: 429, message: "Too many requests; retry after the number of seconds in Retry-After." },
  HEADERS_TOO_LARGE: { status: 431, message: "The request headers are too large." },
  INTERNAL_ERROR: { status: 500, message: "The gateway failed to handle the request." },
  UPSTREAM_UNREACHABLE: { status: 502, message: "The upstream could not be reached." },
  RESOLVER_FAILED: { status: 502, message: "The upstream did not answer the attribute lookup." },
  NOT_READY: { status: 503, message: "The gateway is not ready." },
  OVERLOADED: { status: 503, message: "The gateway is overloaded; retry after the number of seconds in Retry-After." },
  UPSTREAM_UNAVAILABLE: { status: 503, message: "The upstream is failing; the gateway is not sending it requests for now. Retry after the number of seconds in Retry-After." },
  DEPENDENCY_UNAVAILABLE: { status: 503, message: "A service the gateway depends on is unavailable." },
  UPSTREAM_TIMEOUT: { status: 504, message: "The upstream did not answer in time." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Thrown anywhere in the pipeline; the error handler renders it with the catalogue's status. */
export class GerbangError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** A stable reason id (403s name the policy reason), safe to show to the client. */
  readonly reason: string | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, options: { reason?: string; message?: string; headers?: Record<string, string> } = {}) {
    super(options.message ?? ERRORS[code].message);
    this.name = "GerbangError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.reason = options.reason;
    this.headers = options.headers ?? {};
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string; reason?: string };
}

export function errorBody(error: GerbangError, requestId: string): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message, requestId } };
  if (error.reason !== undefined) body.error.reason = error.reason;
  return body;
}
