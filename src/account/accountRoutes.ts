import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GerbangError } from "../errors/catalogue.ts";
import { requireSignedInUser, WWW_AUTHENTICATE } from "../pipeline/authenticate.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { ApiKeyService } from "../keys/apiKeyService.ts";
import { exportUser } from "../admin/exportUser.ts";
import { softDeleteUser } from "../admin/eraseUser.ts";

export interface AccountRoutesOptions {
  prisma: PrismaClient;
  keys: ApiKeyService;
  /** The proxy's authenticate stage with its rate limits: same credentials, same 401s, same buckets. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** auth.freshSignInSec: deleting the account needs a sign-in at most this old. */
  freshSignInSec: number;
  /** auth.erasureGraceDays. */
  erasureGraceDays: number;
  /** Every instance drops what it cached of the user. */
  onUserChanged?: (userId: string) => void;
}

/**
 * The signed-in user's own account data: `GET /api/account/export` downloads everything the gateway
 * holds about them as JSON (src/admin/exportUser.ts); `POST /api/account/delete` deletes the account
 * (src/admin/eraseUser.ts: at once and everywhere, purged after the grace period). A person's own
 * session only: an API key, which may be a partner's integration, is no way to take someone's personal
 * data or to end their account. Audited.
 */
export async function accountRoutes(app: FastifyInstance, options: AccountRoutesOptions): Promise<void> {
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    await options.authenticate(request, reply);
    requireSignedInUser(request, { reason: "KEYS_CANNOT_EXPORT", message: "A user exports or deletes their own data with their own sign-in, not with an API key." });
  });

  app.get("/api/account/export", async (request, reply) => {
    const userId = request.gerbang.principal?.userId ?? null;
    request.gerbang.event = { action: "user.exported", actorId: userId, target: userId };
    const data = userId === null ? null : await exportUser(options.prisma, options.keys, userId);
    if (data === null) throw new GerbangError("UNAUTHENTICATED", { headers: { "www-authenticate": WWW_AUTHENTICATE } });
    return reply.header("content-disposition", `attachment; filename="gerbang-export-${data.exportedAt.slice(0, 10)}.json"`).send(data);
  });

  // A stolen, days-old cookie must not end the account: a recent sign-in, as for issuing a key.
  app.post("/api/account/delete", async (request) => {
    const principal = request.gerbang.principal;
    const userId = principal?.userId ?? null;
    request.gerbang.event = { action: "user.deleted", actorId: userId, target: userId };
    if (userId === null) throw new GerbangError("UNAUTHENTICATED", { headers: { "www-authenticate": WWW_AUTHENTICATE } });
    // An admin impersonating the user acts for them, not as them: not for this.
    if (principal?.impersonatedBy !== undefined) throw new GerbangError("FORBIDDEN", { reason: "IMPERSONATION", message: "An impersonation session cannot delete the account: gerbang users delete or the admin API's users/delete do, audited as the admin." });
    const signedInAt = principal?.signedInAt;
    if (signedInAt === undefined || Date.now() - signedInAt > options.freshSignInSec * 1000) {
      throw new GerbangError("FORBIDDEN", { reason: "FRESH_SIGN_IN_REQUIRED", message: `Sign in again to delete your account: this needs a sign-in in the last ${Math.round(options.freshSignInSec / 60)} minutes.` });
    }
    const outcome = await softDeleteUser({ prisma: options.prisma, keys: options.keys }, userId, options.erasureGraceDays * 86_400);
    options.onUserChanged?.(userId);
    if (typeof outcome !== "string") for (const other of outcome.impersonated) options.onUserChanged?.(other);
    // Already deleted: this session could not exist (deletion ends them all) unless it raced the deletion.
    if (typeof outcome === "string") throw new GerbangError("UNAUTHENTICATED", { headers: { "www-authenticate": WWW_AUTHENTICATE } });
    return { deleted: true, purgeAfter: outcome.purgeAfter, sessionsRevoked: outcome.sessionsRevoked, keysRevoked: outcome.keysRevoked.length };
  });
}
