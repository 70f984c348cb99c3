import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { subject } from "@casl/ability";
import Type, { type TSchema } from "#typebox";
import Value from "#typebox/value";
import { GerbangError } from "../errors/catalogue.ts";
import { requireSignedInUser } from "../pipeline/authenticate.ts";
import type { Principal } from "../auth/principal.ts";
import type { ApiKeyService } from "./apiKeyService.ts";
import { accessibleKeys, keyAbilityFor, type KeyAbility } from "./keyAbility.ts";
import { parseDuration } from "./duration.ts";

export interface KeyRoutesOptions {
  service: ApiKeyService;
  /** The proxy's authenticate stage with its rate limits: same credentials, same 401s, same buckets. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** The tier a non-admin gets; only admins choose another. */
  selfServiceTier: string;
  /** A key's secret is issued only to a sign-in at most this old (auth.freshSignInSec). */
  freshSignInSec: number;
}

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    scopes: Type.Array(Type.String(), { minItems: 1, maxItems: 32 }),
    tier: Type.Optional(Type.String()),
    expiresIn: Type.Optional(Type.String({ description: "e.g. 30d, 24h" })),
    ownerId: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const RotateBody = Type.Object({ grace: Type.Optional(Type.String()) }, { additionalProperties: false });
const ListQuery = Type.Object({ owner: Type.Optional(Type.String()) }, { additionalProperties: false });

function checked<T>(schema: TSchema, value: unknown, where: string): T {
  const input = value ?? {};
  const first = [...Value.Errors(schema, input)][0];
  if (first !== undefined) throw new GerbangError("MALFORMED_REQUEST", { message: `${where}${first.instancePath || ""}: ${first.message}` });
  return input as T;
}

function duration(text: string | undefined, field: string): number | undefined {
  if (text === undefined) return undefined;
  const seconds = parseDuration(text);
  if (seconds === null) throw new GerbangError("MALFORMED_REQUEST", { message: `${field}: a duration such as 90s, 15m, 24h or 30d` });
  return seconds;
}

/**
 * The key lifecycle over HTTP for signed-in users (session cookie or bearer): owners manage their
 * own keys, admins everyone's. A key cannot manage keys. Visibility comes from keyAbility through
 * @casl/prisma, so a key that is not yours is indistinguishable from one that does not exist.
 */
export async function keyRoutes(app: FastifyInstance, options: KeyRoutesOptions): Promise<void> {
  const { service } = options;
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    await options.authenticate(request, reply);
    requireSignedInUser(request, { reason: "KEYS_CANNOT_MANAGE_KEYS", message: "API keys are managed by signed-in users, not by keys." });
  });
  // Every key change is audited, refused or done (the event's status says which); reads are not.
  const audited = (request: FastifyRequest, action: string, target: string | null): void => {
    request.gerbang.event = { action, actorId: request.gerbang.principal?.userId ?? null, target };
  };
  // A stolen session cookie that is days old must not mint a long-lived credential: issuing a secret
  // (create, rotate) asks for a recent sign-in, as Better Auth's fresh-session age does for its own.
  const freshOnly = (request: FastifyRequest): void => {
    const signedInAt = request.gerbang.principal?.signedInAt;
    if (signedInAt !== undefined && Date.now() - signedInAt <= options.freshSignInSec * 1000) return;
    throw new GerbangError("FORBIDDEN", { reason: "FRESH_SIGN_IN_REQUIRED", message: `Sign in again to issue API keys: this needs a sign-in in the last ${Math.round(options.freshSignInSec / 60)} minutes.` });
  };
  const who = (request: FastifyRequest): { principal: Principal; ability: KeyAbility } => {
    const principal = request.gerbang.principal;
    if (principal === undefined) throw new GerbangError("INTERNAL_ERROR");
    return { principal, ability: keyAbilityFor(principal) };
  };

  app.get("/api/keys", async (request) => {
    const { owner } = checked<{ owner?: string }>(ListQuery, request.query, "query");
    const { ability } = who(request);
    return { keys: await service.list(accessibleKeys(ability, "read"), owner) };
  });

  app.post("/api/keys", async (request, reply) => {
    audited(request, "key.created", null);
    const body = checked<Type.Static<typeof CreateBody>>(CreateBody, request.body, "body");
    freshOnly(request);
    const { principal, ability } = who(request);
    const ownerId = body.ownerId ?? principal.userId ?? "";
    if (!ability.can("create", subject("Apikey", { referenceId: ownerId } as never))) throw new GerbangError("FORBIDDEN", { reason: "NOT_YOUR_KEY" });
    const tier = body.tier ?? options.selfServiceTier;
    if (tier !== options.selfServiceTier && !ability.can("manage", "Apikey")) {
      throw new GerbangError("FORBIDDEN", { reason: "TIER_NOT_SELF_SERVICE", message: `Only admins issue keys outside the ${options.selfServiceTier} tier.` });
    }
    const expiresInSec = duration(body.expiresIn, "body/expiresIn");
    const { key, view } = await service.create({ ownerId, name: body.name, tier, scopes: body.scopes, ...(expiresInSec === undefined ? {} : { expiresInSec }) });
    audited(request, "key.created", view.id);
    return reply.code(201).send({ key, ...view });
  });

  app.delete<{ Params: { id: string } }>("/api/keys/:id", async (request) => {
    audited(request, "key.revoked", request.params.id);
    const { ability } = who(request);
    return service.revoke(request.params.id, accessibleKeys(ability, "revoke"));
  });

  app.post<{ Params: { id: string } }>("/api/keys/:id/rotate", async (request, reply) => {
    audited(request, "key.rotated", request.params.id);
    const body = checked<{ grace?: string }>(RotateBody, request.body, "body");
    freshOnly(request);
    const { ability } = who(request);
    const graceSec = duration(body.grace, "body/grace") ?? 86400;
    const { key, view, previous } = await service.rotate(request.params.id, graceSec, accessibleKeys(ability, "rotate"));
    return reply.code(201).send({ key, ...view, previous });
  });
}
