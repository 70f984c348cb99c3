// `gerbang/upstream`: what a service behind the gateway imports. Nothing of the gateway is loaded
// through here (no Fastify, Prisma or Better Auth); its only dependencies are jose and @casl/ability,
// so this folder can become a package of its own.
export { AssertionError, createAssertionVerifier } from "./verifyAssertion.ts";
export type { AssertionErrorCode, AssertionVerifierOptions, AuthKind, IdentityAbility, VerifiedIdentity } from "./verifyAssertion.ts";
export { FilterError, filterFor, matchesFilter, simplify, toPrismaWhere } from "./dataFilter.ts";
export type { DataFilter, FilterOperator, FilterValue, PrismaWhere, PrismaWhereOptions } from "./dataFilter.ts";
export { createPermissionGuard, expressGuard, fastifyGuard, requestGuard, webGuard } from "./permissionGuard.ts";
export type { GuardResult, HeaderSource, PermissionGuard, PermissionGuardOptions, Permissions, RequestGuardOptions } from "./permissionGuard.ts";
