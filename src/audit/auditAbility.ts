import { AbilityBuilder, type Ability } from "@casl/ability";
import { accessibleBy, createPrismaAbility, type PrismaQueryFactory, type Subjects } from "@casl/prisma/runtime";
import type { AuditEvent, Prisma } from "../generated/prisma/client.ts";
import type { Principal } from "../auth/principal.ts";

type AuditQuery = PrismaQueryFactory<Prisma.TypeMap, AuditEvent>;
export type AuditAbility = Ability<["read", Subjects<{ AuditEvent: AuditEvent }>], AuditQuery>;

/**
 * Who sees which audit events, as CASL rules over the audit_event table: the roles in
 * audit.viewAllRoles every event, every other signed-in user the events they acted in (their own
 * sign-ins, their key changes). They become a Prisma filter (accessibleBy), so a listing can never
 * return another user's event, whatever the filters ask.
 */
export function auditAbilityFor(principal: Principal, viewAllRoles: readonly string[]): AuditAbility {
  const { can, build } = new AbilityBuilder<AuditAbility>(createPrismaAbility);
  if (principal.roles.some((r) => viewAllRoles.includes(r))) can("read", "AuditEvent");
  else if (principal.userId !== null) can("read", "AuditEvent", { principalId: principal.userId });
  return build();
}

/**
 * "No rule" is written `{ id: { in: [] } }`, not accessibleBy's `{ OR: [] }`: Prisma 7 reads a nested
 * empty OR as no condition, and searchAudit nests this filter in an AND.
 */
export const visibleEvents = (ability: AuditAbility): Prisma.AuditEventWhereInput =>
  ability.can("read", "AuditEvent") ? accessibleBy(ability, "read").ofType("AuditEvent") : { id: { in: [] } };
