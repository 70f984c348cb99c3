import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Value from "#typebox/value";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { GerbangError } from "../errors/catalogue.ts";
import { requireSignedInUser } from "../pipeline/authenticate.ts";
import { AuditFilters, searchAudit } from "./searchAudit.ts";
import { auditAbilityFor, visibleEvents } from "./auditAbility.ts";

export interface AuditRoutesOptions {
  prisma: PrismaClient;
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  viewAllRoles: readonly string[];
}

const NUMERIC = new Set(["limit"]);

/**
 * `GET /api/audit/events`: the same filters as `gerbang audit search`, for signed-in users; what
 * each sees is decided by auditAbilityFor and applied by the database (accessibleBy).
 */
export async function auditRoutes(app: FastifyInstance, options: AuditRoutesOptions): Promise<void> {
  app.get("/api/audit/events", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    await options.authenticate(request, reply);
    requireSignedInUser(request, { reason: "KEYS_CANNOT_READ_AUDIT", message: "The audit trail is read by signed-in users, not API keys." });
    const principal = request.gerbang.principal;
    if (principal === undefined) throw new GerbangError("INTERNAL_ERROR");
    const query: Record<string, unknown> = {};
    for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
      if (Array.isArray(value)) throw new GerbangError("MALFORMED_REQUEST", { message: `query: ${name} given more than once` });
      query[name] = NUMERIC.has(name) && typeof value === "string" && /^[0-9]{1,4}$/.test(value) ? Number(value) : value;
    }
    const first = [...Value.Errors(AuditFilters, query)][0];
    if (first !== undefined) throw new GerbangError("MALFORMED_REQUEST", { message: `query${first.instancePath || ""}: ${first.message}` });
    return searchAudit(options.prisma, query as AuditFilters, visibleEvents(auditAbilityFor(principal, options.viewAllRoles)));
  });
}
