import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GerbangError } from "../errors/catalogue.ts";
import { requireSignedInUser, WWW_AUTHENTICATE } from "../pipeline/authenticate.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { ApiKeyService } from "../keys/apiKeyService.ts";
import { exportUser } from "../admin/exportUser.ts";

export interface AccountRoutesOptions {
  prisma: PrismaClient;
  keys: ApiKeyService;
  /** The proxy's authenticate stage with its rate limits: same credentials, same 401s, same buckets. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

/**
 * The signed-in user's own account data: `GET /api/account/export` downloads everything the gateway
 * holds about them as JSON (src/admin/exportUser.ts). A person's own session only: an API key, which
 * may be a partner's integration, is no way to take someone's personal data. Audited.
 */
export async function accountRoutes(app: FastifyInstance, options: AccountRoutesOptions): Promise<void> {
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    await options.authenticate(request, reply);
    requireSignedInUser(request, { reason: "KEYS_CANNOT_EXPORT", message: "A user exports their own data with their own sign-in, not with an API key." });
  });

  app.get("/api/account/export", async (request, reply) => {
    const userId = request.gerbang.principal?.userId ?? null;
    request.gerbang.event = { action: "user.exported", actorId: userId, target: userId };
    const data = userId === null ? null : await exportUser(options.prisma, options.keys, userId);
    if (data === null) throw new GerbangError("UNAUTHENTICATED", { headers: { "www-authenticate": WWW_AUTHENTICATE } });
    return reply.header("content-disposition", `attachment; filename="gerbang-export-${data.exportedAt.slice(0, 10)}.json"`).send(data);
  });
}
