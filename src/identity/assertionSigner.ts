import { SignJWT } from "jose";
import type { JSONWebKeySet } from "jose";
import { packRules } from "@casl/ability/extra";
import type { Principal } from "../auth/principal.ts";
import type { RawPolicyRule } from "../policy/policySet.ts";
import { rulesForPrincipal } from "../policy/compileAbility.ts";
import type { SigningKey } from "./signingKey.ts";

interface Cached {
  token: string;
  reuseUntil: number;
}

/**
 * Signs x-gerbang-assertion. A signature costs about as much as the rest of the proxy path, so a
 * token is reused per (principal, policy version, audience) until a quarter of its lifetime is
 * left; the upstream never sees one with less than that remaining. Principals are immutable (a
 * changed role or attribute makes a new object), so the object itself is the cache key.
 */
export class AssertionSigner {
  /** By principal object (the key and session caches hand out the same object while it is valid), then version + audience. */
  private cache = new WeakMap<Principal, Map<string, Cached>>();
  private entries = 0;

  private readonly key: SigningKey;
  private readonly ttlSec: number;
  private readonly maxEntries: number;

  constructor(
    key: SigningKey,
    ttlSec: number,
    maxEntries: number = 50_000,
  ) {
    this.key = key;
    this.ttlSec = ttlSec;
    this.maxEntries = maxEntries;
  }

  /** Assertions cached now (at most identity.cacheMaxEntries). */
  get size(): number {
    return this.entries;
  }

  get jwks(): JSONWebKeySet {
    return { keys: [this.key.publicJwk] };
  }

  /** `scopeRules`: for an API key, the rules of its scopes; the upstream must allow only what both sets allow. */
  async assertionFor(principal: Principal, rules: readonly RawPolicyRule[], policyVersion: string, audience: string, scopeRules?: readonly RawPolicyRule[]): Promise<string> {
    const cacheKey = `${policyVersion}\n${audience}`;
    const now = Date.now();
    let forPrincipal = this.cache.get(principal);
    const hit = forPrincipal?.get(cacheKey);
    if (hit !== undefined && hit.reuseUntil > now) return hit.token;

    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({
      roles: principal.roles,
      auth: principal.authMethod,
      policy: policyVersion,
      rules: packRules(rulesForPrincipal(rules, principal.attributes)),
      ...(principal.key === undefined
        ? {}
        : { key: principal.key.id, scopes: principal.key.scopes, scopeRules: packRules(rulesForPrincipal(scopeRules ?? [], principal.attributes)) }),
    })
      .setProtectedHeader({ alg: this.key.algorithm, kid: this.key.kid, typ: "JWT" })
      .setIssuer("gerbang")
      .setSubject(principal.userId ?? "anonymous")
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSec)
      .sign(this.key.privateKey);

    if (this.entries >= this.maxEntries) {
      this.cache = new WeakMap();
      this.entries = 0;
      forPrincipal = undefined;
    }
    if (forPrincipal === undefined) {
      forPrincipal = new Map();
      this.cache.set(principal, forPrincipal);
    }
    if (!forPrincipal.has(cacheKey)) this.entries += 1;
    forPrincipal.set(cacheKey, { token, reuseUntil: now + (this.ttlSec * 1000 * 3) / 4 });
    return token;
  }
}
