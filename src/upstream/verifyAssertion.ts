// Verifies the `x-gerbang-assertion` JWT that the gateway attaches to every forwarded request.
// Upstream services import this instead of trusting the plain `x-gerbang-*` headers, which
// anyone able to reach the service directly could forge.
import { createMongoAbility } from "@casl/ability";
import type { MongoAbility, RawRuleOf } from "@casl/ability";
import { unpackRules } from "@casl/ability/extra";
import type { PackRule } from "@casl/ability/extra";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from "jose";
import type { JSONWebKeySet, JWTPayload } from "jose";
import { conditionsFilter, filterFor, matchesFilter, toPrismaWhere } from "./dataFilter.ts";
import type { DataFilter, PrismaWhere, PrismaWhereOptions } from "./dataFilter.ts";

export type AuthKind = "session" | "api-key" | "anonymous";

/** What the caller may do: `can` holds only where every ability that applies to the caller allows it. */
export interface IdentityAbility {
  can(...args: Parameters<MongoAbility["can"]>): boolean;
  cannot(...args: Parameters<MongoAbility["can"]>): boolean;
}

export interface VerifiedIdentity {
  subject: string;
  userId: string | null;
  roles: string[];
  /** How the caller authenticated; `auth` is the same value under its older name. */
  authMethod: AuthKind;
  auth: AuthKind;
  policyVersion: string;
  /**
   * The gateway's decision, for upstream checks: the owner's rules, and for an API key also its
   * scopes (owner ∩ scopes, as the gateway decides). A partner key of an admin is not an admin.
   */
  ability: IdentityAbility;
  /** The owner's rules alone. For a data filter of an API key, apply both this and `scopeAbility`. */
  ownerAbility: MongoAbility;
  /** The key's scopes as an ability; null unless `authMethod` is "api-key". */
  scopeAbility: MongoAbility | null;
  /**
   * The records of `subjectType` the caller may `action`, as a plain filter tree (`true`: all,
   * `false`: none); owner ∩ scopes for an API key. Throws FilterError for what has no filter.
   */
  filter(action: string, subjectType: string): DataFilter;
  /** The same as a Prisma `where`: `prisma.order.findMany({ where: identity.prismaWhere("read", "Order") })`. */
  prismaWhere(action: string, subjectType: string, options?: PrismaWhereOptions): PrismaWhere;
  /** The API key's id, or null. */
  key: string | null;
  /** The API key's scopes; empty unless `authMethod` is "api-key". */
  scopes: string[];
  expiresAt: Date;
}

export interface AssertionVerifierOptions {
  /** The gateway's `/.well-known/jwks.json`; fetched, cached and refetched on an unknown `kid`. */
  jwksUrl?: string;
  /** The key set itself instead of `jwksUrl`: for a service in the gateway's own process (the demo). */
  jwks?: JSONWebKeySet;
  audience: string;
  /** Defaults to "gerbang". */
  issuer?: string;
  /** Defaults to 5 seconds. */
  clockToleranceSec?: number;
}

export type AssertionErrorCode =
  | "ASSERTION_MISSING"
  | "ASSERTION_INVALID"
  | "ASSERTION_SIGNATURE_INVALID"
  | "ASSERTION_EXPIRED"
  | "ASSERTION_LIFETIME_TOO_LONG"
  | "ASSERTION_CLAIMS_INVALID"
  | "ASSERTION_JWKS_UNAVAILABLE";

export class AssertionError extends Error {
  readonly code: AssertionErrorCode;

  constructor(code: AssertionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AssertionError";
    this.code = code;
  }
}

// The gateway issues tokens valid for at most 60 s; twice that leaves room for clock skew and
// slow upstreams while still refusing tokens minted for long-term replay.
const MAX_LIFETIME_SEC = 120;
const AUTH_KINDS: readonly string[] = ["session", "api-key", "anonymous"];
const ANONYMOUS_SUBJECT = "anonymous";

type PackedRule = PackRule<RawRuleOf<MongoAbility>>;

export function createAssertionVerifier(options: AssertionVerifierOptions): (token: string) => Promise<VerifiedIdentity> {
  const issuer = options.issuer ?? "gerbang";
  const tolerance = options.clockToleranceSec ?? 5;
  if (typeof options.audience !== "string" || options.audience === "") {
    throw new TypeError("createAssertionVerifier: audience must be a non-empty string");
  }
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new TypeError("createAssertionVerifier: clockToleranceSec must be a non-negative number");
  }
  if ((options.jwksUrl === undefined) === (options.jwks === undefined)) {
    throw new TypeError("createAssertionVerifier: give exactly one of jwksUrl and jwks");
  }
  // One key set per verifier so keys are cached across requests; jose refetches on an unknown
  // `kid` (after its cooldown), which is what makes gateway key rotation work without restarts.
  const jwks = options.jwks !== undefined ? createLocalJWKSet(options.jwks) : createRemoteJWKSet(new URL(options.jwksUrl ?? ""));

  return async (token: string): Promise<VerifiedIdentity> => {
    if (typeof token !== "string" || token === "") {
      throw new AssertionError("ASSERTION_MISSING", "no assertion token");
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: ["EdDSA", "ES256"],
        issuer,
        audience: options.audience,
        clockTolerance: tolerance,
        requiredClaims: ["sub", "iat", "exp"],
      }));
    } catch (error) {
      throw fromJoseError(error);
    }
    return identityFromClaims(payload, tolerance);
  };
}

function fromJoseError(error: unknown): AssertionError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof errors.JWTExpired) return new AssertionError("ASSERTION_EXPIRED", message, { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new AssertionError("ASSERTION_CLAIMS_INVALID", message, { cause: error });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) {
    return new AssertionError("ASSERTION_SIGNATURE_INVALID", message, { cause: error });
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new AssertionError("ASSERTION_JWKS_UNAVAILABLE", message, { cause: error });
  }
  if (error instanceof errors.JOSEError) return new AssertionError("ASSERTION_INVALID", message, { cause: error });
  // Anything else is the JWKS fetch itself failing (connection refused, non-2xx, bad JSON).
  return new AssertionError("ASSERTION_JWKS_UNAVAILABLE", `cannot load JWKS: ${message}`, { cause: error });
}

function claimsError(message: string): AssertionError {
  return new AssertionError("ASSERTION_CLAIMS_INVALID", message);
}

function identityFromClaims(payload: JWTPayload, toleranceSec: number): VerifiedIdentity {
  const { sub, iat, exp } = payload;
  // jose has checked presence and numeric type of these; re-narrow for the compiler.
  if (typeof sub !== "string" || sub === "") throw claimsError('"sub" must be a non-empty string');
  if (typeof iat !== "number" || typeof exp !== "number") throw claimsError('"iat" and "exp" must be numbers');
  if (exp <= iat) throw claimsError('"exp" must be after "iat"');
  if (exp - iat > MAX_LIFETIME_SEC) {
    throw new AssertionError("ASSERTION_LIFETIME_TOO_LONG", `token lifetime ${exp - iat}s exceeds ${MAX_LIFETIME_SEC}s`);
  }
  // jose only rejects a future `iat` when maxTokenAge is set; a token "issued" in the future
  // would otherwise stretch its effective lifetime past the cap above.
  if (iat > Date.now() / 1000 + toleranceSec) throw claimsError('"iat" is in the future');

  const { roles, auth, policy, rules } = payload;
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === "string" && role !== "")) {
    throw claimsError('"roles" must be an array of non-empty strings');
  }
  if (typeof auth !== "string" || !AUTH_KINDS.includes(auth)) {
    throw claimsError('"auth" must be one of session, api-key, anonymous');
  }
  // The two ways of saying "no user" must agree, or `userId` would be ambiguous.
  if ((auth === "anonymous") !== (sub === ANONYMOUS_SUBJECT)) {
    throw claimsError('"sub" is "anonymous" exactly when "auth" is "anonymous"');
  }
  if (typeof policy !== "string" || policy === "") throw claimsError('"policy" must be a non-empty string');

  const ownerAbility = abilityFromPackedRules(rules, "rules");
  let scopeAbility: MongoAbility | null = null;
  let key: string | null = null;
  let scopes: string[] = [];
  if (auth === "api-key") {
    // Fail closed: a key's assertion without its scopes would hand the key its owner's whole ability.
    const { key: keyId, scopes: keyScopes, scopeRules } = payload;
    if (typeof keyId !== "string" || keyId === "") throw claimsError('"key" must be a non-empty string for auth "api-key"');
    if (!Array.isArray(keyScopes) || !keyScopes.every((scope) => typeof scope === "string" && scope !== "")) {
      throw claimsError('"scopes" must be an array of non-empty strings for auth "api-key"');
    }
    key = keyId;
    scopes = [...(keyScopes as string[])];
    scopeAbility = abilityFromPackedRules(scopeRules, "scopeRules");
  } else if (payload.key !== undefined || payload.scopes !== undefined || payload.scopeRules !== undefined) {
    throw claimsError('"key", "scopes" and "scopeRules" belong to auth "api-key" only');
  }
  const scope = scopeAbility;
  const can = (...args: Parameters<MongoAbility["can"]>): boolean => ownerAbility.can(...args) && (scope === null || scope.can(...args));
  const abilities = scope === null ? [ownerAbility] : [ownerAbility, scope];
  const filter = (action: string, subjectType: string): DataFilter => filterFor(abilities, action, subjectType);

  return {
    subject: sub,
    userId: sub === ANONYMOUS_SUBJECT ? null : sub,
    roles: [...(roles as string[])],
    authMethod: auth as AuthKind,
    auth: auth as AuthKind,
    policyVersion: policy,
    ability: { can, cannot: (...args) => !can(...args) },
    ownerAbility,
    scopeAbility,
    filter,
    prismaWhere: (action, subjectType, prismaOptions) => toPrismaWhere(filter(action, subjectType), prismaOptions),
    key,
    scopes,
    expiresAt: new Date(exp * 1000),
  };
}

function abilityFromPackedRules(rules: unknown, claim: "rules" | "scopeRules"): MongoAbility {
  if (!Array.isArray(rules)) throw claimsError(`"${claim}" must be an array of packed CASL rules`);
  const packed = rules.map((rule, index) => checkPackedRule(rule, index, claim));
  let ability: MongoAbility;
  try {
    // The gateway's condition semantics, not CASL's default Mongo ones: `can()` here, the gateway's
    // decision and `filter()` in a database must agree (missing vs null, `$ne`, types never coerced).
    ability = createMongoAbility(unpackRules(packed), { conditionsMatcher: conditionsMatcher as never });
  } catch (error) {
    throw new AssertionError("ASSERTION_CLAIMS_INVALID", `"${claim}" rejected by CASL: ${errorMessage(error)}`, { cause: error });
  }
  return ability;
}

// Packed layout: [actions, subjects, conditions|0, inverted 1|0, fields|0, reason].
function checkPackedRule(rule: unknown, index: number, claim: string): PackedRule {
  const bad = (what: string): AssertionError => claimsError(`"${claim}[${index}]": ${what}`);
  if (!Array.isArray(rule) || rule.length < 2 || rule.length > 6) throw bad("must be a packed rule tuple");
  const [action, subject, conditions, inverted, fields, reason] = rule as unknown[];
  if (typeof action !== "string" || action === "") throw bad("action must be a non-empty string");
  if (typeof subject !== "string" || subject === "") throw bad("subject must be a non-empty string");
  if (conditions !== undefined && conditions !== 0) {
    if (!isPlainObject(conditions)) throw bad("conditions must be an object or 0");
    // CASL compiles conditions lazily on the first `can()`; compiling here turns a malformed or
    // unknown operator (e.g. `$in` with a non-array, `$regex`) into a verification failure instead of
    // an exception thrown later from inside an upstream handler.
    try {
      conditionsFilter(conditions);
    } catch (error) {
      throw bad(`invalid conditions: ${errorMessage(error)}`);
    }
  }
  if (inverted !== undefined && inverted !== 0 && inverted !== 1) throw bad("inverted flag must be 0 or 1");
  if (fields !== undefined && fields !== 0 && (typeof fields !== "string" || fields === "")) {
    throw bad("fields must be a non-empty string or 0");
  }
  if (reason !== undefined && typeof reason !== "string") throw bad("reason must be a string");
  return rule as PackedRule;
}

function conditionsMatcher(conditions: Record<string, unknown>): (object: Record<string, unknown>) => boolean {
  const compiled = conditionsFilter(conditions);
  return (object) => matchesFilter(compiled, object);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
