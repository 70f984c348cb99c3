import { compileAbility, type PolicyAbility } from "./compileAbility.ts";
import type { PolicySet, RawPolicyRule } from "./policySet.ts";

export interface CompiledRoleSet {
  key: string;
  roles: readonly string[];
  rules: readonly RawPolicyRule[];
  ability: PolicyAbility;
}

/**
 * Abilities keyed by role set, for exactly one policy version: a new version gets a new cache, so
 * activation swaps both at once and an old ability can never serve the new version.
 */
export class AbilityCache {
  private readonly compiled = new Map<string, CompiledRoleSet>();
  /** Principals keep their role and scope arrays: the same array finds its entry without sorting and joining. */
  private readonly byArray = new WeakMap<readonly string[], CompiledRoleSet>();
  compilations = 0;

  readonly policy: PolicySet;
  private readonly maxEntries: number;

  constructor(
    policy: PolicySet,
    maxEntries: number = 1024,
  ) {
    this.policy = policy;
    this.maxEntries = maxEntries;
  }

  /** Abilities held now (at most policy.abilityCacheMaxEntries). */
  get size(): number {
    return this.compiled.size;
  }

  /** Read by the metrics at scrape time: a miss is a compilation. */
  readonly stats = { hits: 0, misses: 0 };

  get(roles: readonly string[]): CompiledRoleSet {
    const known = this.byArray.get(roles);
    if (known !== undefined) {
      this.stats.hits += 1;
      return known;
    }
    const sorted = [...new Set(roles)].sort();
    // Unknown roles contribute no rules (default deny), never an error that could be probed.
    return this.remember(roles, this.compile(sorted.join(","), sorted, () => sorted.flatMap((role) => this.policy.rulesByRole.get(role) ?? [])));
  }

  /** The ability of an API key's scopes; intersected with its owner's role ability by the caller. */
  forScopes(scopes: readonly string[]): CompiledRoleSet {
    const known = this.byArray.get(scopes);
    if (known !== undefined) return known;
    const sorted = [...new Set(scopes)].sort();
    // Unknown scopes (e.g. dropped in a newer version) grant nothing.
    return this.remember(scopes, this.compile(`scopes:${sorted.join(",")}`, sorted, () => sorted.flatMap((scope) => this.policy.scopes.get(scope)?.rules ?? [])));
  }

  /**
   * Compiles, ahead of traffic, every role and scope set another cache has compiled: after a version
   * switch the next requests find their abilities ready instead of compiling on the hot path.
   */
  warmFrom(other: AbilityCache): void {
    for (const { key, roles } of other.compiled.values()) {
      if (key.startsWith("scopes:")) this.forScopes(roles);
      else this.get(roles);
    }
  }

  /** Only frozen arrays are remembered by identity: a caller could change a mutable one afterwards. */
  private remember(array: readonly string[], entry: CompiledRoleSet): CompiledRoleSet {
    if (Object.isFrozen(array)) this.byArray.set(array, entry);
    return entry;
  }

  private compile(key: string, roles: string[], rulesOf: () => RawPolicyRule[]): CompiledRoleSet {
    const hit = this.compiled.get(key);
    if (hit !== undefined) {
      this.stats.hits += 1;
      return hit;
    }
    this.stats.misses += 1;
    const rules = rulesOf();
    const entry = { key, roles, rules, ability: compileAbility(rules) };
    this.compilations++;
    if (this.compiled.size >= this.maxEntries) this.compiled.clear();
    this.compiled.set(key, entry);
    return entry;
  }
}
