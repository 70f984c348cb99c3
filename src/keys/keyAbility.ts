import { AbilityBuilder, type Ability } from "@casl/ability";
import { accessibleBy, createPrismaAbility, type PrismaQueryFactory, type Subjects } from "@casl/prisma/runtime";
import type { Apikey, Prisma } from "../generated/prisma/client.ts";
import type { Principal } from "../auth/principal.ts";

export type KeyAction = "read" | "create" | "revoke" | "rotate";
type KeyQuery = PrismaQueryFactory<Prisma.TypeMap, Apikey>;
export type KeyAbility = Ability<[KeyAction | "manage", Subjects<{ Apikey: Apikey }>], KeyQuery>;

/**
 * Who may manage which keys, as CASL rules over the apikey table: admins all keys, every other
 * signed-in user their own. Kept apart from the proxy policy: these rules guard the gateway's own
 * data and become Prisma filters (accessibleBy), so a listing can never return someone else's key.
 */
export function keyAbilityFor(principal: Principal): KeyAbility {
  const { can, build } = new AbilityBuilder<KeyAbility>(createPrismaAbility);
  if (principal.roles.includes("admin")) can("manage", "Apikey");
  else if (principal.userId !== null) can(["read", "create", "revoke", "rotate"], "Apikey", { referenceId: principal.userId });
  return build();
}

/**
 * "No rule" is written `{ id: { in: [] } }`, not accessibleBy's `{ OR: [] }`: Prisma 7 reads a nested
 * empty OR as no condition, and the listing nests this filter in an AND.
 */
export function accessibleKeys(ability: KeyAbility, action: KeyAction): Prisma.ApikeyWhereInput {
  if (!ability.can(action, "Apikey")) return { id: { in: [] } };
  return accessibleBy(ability, action).ofType("Apikey");
}
