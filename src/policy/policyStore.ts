import { AbilityCache, type CompiledRoleSet } from "./abilityCache.ts";
import type { PolicySet } from "./policySet.ts";

interface Active {
  policy: PolicySet;
  abilities: AbilityCache;
}

/**
 * The active policy version and its abilities, swapped as one reference: a request reads `current`
 * once and uses that snapshot to the end, so it never mixes two versions.
 */
export class PolicyStore {
  private active: Active;
  private readonly maxAbilities: number | undefined;
  private readonly listeners: Array<() => void> = [];

  /** `maxAbilities`: the bound of each version's ability cache (policy.abilityCacheMaxEntries). */
  constructor(policy: PolicySet, maxAbilities?: number) {
    this.maxAbilities = maxAbilities;
    this.active = { policy, abilities: new AbilityCache(policy, maxAbilities) };
  }

  get current(): Readonly<Active> {
    return this.active;
  }

  abilitiesFor(roles: readonly string[]): CompiledRoleSet {
    return this.active.abilities.get(roles);
  }

  /** Compiles the new version's abilities first, then swaps: a request sees the old snapshot or the new one. */
  activate(policy: PolicySet): void {
    const abilities = new AbilityCache(policy, this.maxAbilities);
    abilities.warmFrom(this.active.abilities);
    this.active = { policy, abilities };
    for (const listener of this.listeners) listener();
  }

  /** Called after every swap (open connections are authorized again under the new version). */
  onActivate(listener: () => void): void {
    this.listeners.push(listener);
  }
}
