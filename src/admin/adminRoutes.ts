import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type, { type Static, type TSchema } from "#typebox";
import Value from "#typebox/value";
import { GerbangError } from "../errors/catalogue.ts";
import type { PolicyStore } from "../policy/policyStore.ts";
import { AbilityCache } from "../policy/abilityCache.ts";
import { explainRequest, type Explanation } from "../policy/explainDecision.ts";
import type { RequestPrincipal } from "../policy/decideRequest.ts";
import { OperationError } from "./operationError.ts";
import type { createAuthorize } from "../pipeline/authorize.ts";
import { rolesFromField } from "../auth/principal.ts";
import { normalizeTarget } from "../pipeline/normalizeTarget.ts";
import { OPERATIONS, runOperation, type OperationName, type OperatorServices } from "./operations.ts";
import { listVersions, loadVersionForAsking } from "./versionForAsking.ts";
import { PRINTABLE } from "./userOperations.ts";
import { playgroundRoutes } from "./playgroundRoutes.ts";
import { diffVersions, type PermissionDiff } from "../policy/diffVersions.ts";
import type { ReplaySummary } from "../audit/replayAudit.ts";

export interface AdminRoutesOptions {
  /** The gateway's own prefix (admin.prefix), e.g. /admin: the API is under <prefix>/api. Not `prefix`: Fastify would prefix every route with it. */
  gatewayPrefix: string;
  /** Null until the gateway has started (the activation services exist only then). */
  services: () => OperatorServices | null;
  policies: PolicyStore;
  /** The proxy's stages, so the admin API is authenticated, rate limited and authorized like any request. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  authorize: Pick<ReturnType<typeof createAuthorize>, "selectBound" | "precheck" | "decide">;
}

// Printable text only: a reason is printed by `gerbang policy status` in an operator's terminal.
const Reason = Type.Optional(Type.String({ maxLength: 500, pattern: PRINTABLE }));
const ActivateBody = Type.Object({ version: Type.String({ minLength: 1, maxLength: 64 }), reason: Reason }, { additionalProperties: false });
const RollbackBody = Type.Object({ reason: Reason }, { additionalProperties: false });
const Attributes = Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 256 }), Type.Number(), Type.Boolean()]));
export const ExplainBody = Type.Object(
  {
    method: Type.Union(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map((m) => Type.Literal(m))),
    path: Type.String({ pattern: "^/", maxLength: 2048 }),
    principal: Type.Optional(Type.Object({ roles: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }), attributes: Type.Optional(Attributes), scopes: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 32 })) }, { additionalProperties: false })),
    user: Type.Optional(Type.String({ maxLength: 320 })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 65 })),
    body: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    resource: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type ExplainInput = Static<typeof ExplainBody>;
const VersionName = Type.String({ minLength: 1, maxLength: 65 });
const DiffBody = Type.Object({ from: VersionName, to: VersionName, replayMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 90 * 86_400_000 })) }, { additionalProperties: false });

const USER_CHANGES = ["users.set-role", "users.set-attr", "users.ban", "users.unban", "users.revoke-sessions", "users.delete", "users.restore", "users.purge"] as const satisfies readonly OperationName[];

/** `GET …/users?search=&role=&banned=true&limit=&offset=` as the operation's input (numbers and flags typed, the rest as given). */
function usersQuery(query: unknown): Record<string, unknown> {
  const given = (query ?? {}) as Record<string, string | string[]>;
  const typed: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(given)) {
    // A repeated parameter is ambiguous: passed on as a list, the schema refuses it.
    if (Array.isArray(value)) typed[name] = value;
    else if (name === "limit" || name === "offset") typed[name] = /^\d{1,9}$/.test(value) ? Number(value) : value;
    else if (name === "banned") typed[name] = value === "true" ? true : value === "false" ? false : value;
    else typed[name] = value;
  }
  return typed;
}

/** An operation's refusal (OperationError) as the API's 422. */
function refusable<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof OperationError) throw new GerbangError("OPERATION_REFUSED", { message: error.message });
    throw error;
  }
}

function checked<T extends TSchema>(schema: T, value: unknown): Static<T> {
  const input = value ?? {};
  const first = [...Value.Errors(schema, input)][0];
  if (first !== undefined) throw new GerbangError("MALFORMED_REQUEST", { message: `body${first.instancePath || ""}: ${first.message}` });
  return input as Static<T>;
}

/**
 * The admin HTTP API under the gateway's own prefix. Nothing here decides who may call it: each route
 * is an endpoint of the active policy version (subject GatewayPolicy), so the security team grants and
 * tests it like any other, and a version that does not map it denies it (ENDPOINT_NOT_MAPPED).
 */
export async function adminRoutes(app: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    request.gerbang.gatewayRoute = "admin";
    const expected = request.routeOptions.config.endpoint;
    // Nothing under the prefix is ever forwarded: an unknown path or method is the gateway's 404/405.
    if (expected === undefined) throw new GerbangError("ROUTE_NOT_FOUND");
    await options.authenticate(request, reply);
    // The gateway is administered by people: a key (whatever its scopes) never reaches these routes.
    if (request.gerbang.principal?.authMethod === "api-key") throw new GerbangError("FORBIDDEN", { reason: "KEYS_CANNOT_ADMINISTER", message: "The admin API is for signed-in users, not API keys." });
    options.authorize.selectBound(request, expected);
    options.authorize.precheck(request);
  });
  app.addHook("preHandler", options.authorize.decide);
  const bound = (endpoint: string): { config: { endpoint: string } } => ({ config: { endpoint } });
  for (const url of [options.gatewayPrefix, `${options.gatewayPrefix}/*`]) app.all(url, async () => undefined);

  const services = (request: FastifyRequest): OperatorServices => {
    const ready = options.services();
    if (ready === null) throw new GerbangError("NOT_READY");
    const principal = request.gerbang.principal;
    // The activation history names who did it: the signed-in admin, not the gateway's OS user.
    return {
      ...ready,
      actor: `${String(principal?.attributes.email ?? principal?.userId ?? "unknown")} (admin API)`,
      caller: { userId: principal?.userId ?? null, authMethod: principal?.authMethod ?? "unauthenticated", roles: (principal?.roles ?? []).join(","), requestId: request.id },
    };
  };
  const run = async <N extends OperationName>(request: FastifyRequest, name: N, input: never): Promise<unknown> => {
    try {
      return await runOperation(services(request), name, input);
    } catch (error) {
      if (error instanceof OperationError) throw new GerbangError("OPERATION_REFUSED", { message: error.message });
      throw error;
    }
  };
  // Account controls: `gerbang users …` over HTTP, one policy endpoint to read, one to change.
  const users = `${options.gatewayPrefix}/api/users`;
  app.get(users, bound("gateway.users.list"), async (request) => run(request, "users.list", checked(OPERATIONS["users.list"].input, usersQuery(request.query)) as never));
  app.post<{ Params: { operation: string } }>(`${users}/:operation`, bound("gateway.users.manage"), async (request) => {
    const name = `users.${request.params.operation}`;
    if (!(USER_CHANGES as readonly string[]).includes(name)) throw new GerbangError("ROUTE_NOT_FOUND");
    const operation = name as (typeof USER_CHANGES)[number];
    return run(request, operation, checked(OPERATIONS[operation].input, request.body) as never);
  });

  const api = `${options.gatewayPrefix}/api/policy`;
  app.post(`${api}/diff`, bound("gateway.policy.diff"), async (request): Promise<{ diff: PermissionDiff; replay: ReplaySummary | null }> => {
    const input = checked(DiffBody, request.body);
    const config = services(request).config;
    const [from, to] = refusable(() => [loadVersionForAsking(config, input.from), loadVersionForAsking(config, input.to)]);
    const replay = input.replayMs === undefined ? null : ((await run(request, "policy.replay", { from: from.version, to: input.to, sinceMs: input.replayMs } as never)) as ReplaySummary);
    return { diff: diffVersions(from, to), replay };
  });
  app.get(`${api}/versions`, bound("gateway.policy.versions"), async (request) => ({ versions: listVersions(services(request).config, options.policies.current.policy.version) }));
  playgroundRoutes(app, options.gatewayPrefix, bound("gateway.playground"));
  app.get(`${api}/status`, bound("gateway.policy.status"), async (request) => run(request, "policy.status", {} as never));
  app.post(`${api}/activate`, bound("gateway.policy.activate"), async (request) => run(request, "policy.activate", checked(ActivateBody, request.body) as never));
  app.post(`${api}/rollback`, bound("gateway.policy.rollback"), async (request) => run(request, "policy.rollback", checked(RollbackBody, request.body) as never));
  app.post(`${api}/explain`, bound("gateway.policy.explain"), async (request): Promise<Explanation> => {
    const input = checked(ExplainBody, request.body);
    const policy = input.version === undefined ? options.policies.current.policy : refusable(() => loadVersionForAsking(services(request).config, input.version ?? ""));
    const cache = input.version === undefined ? options.policies.current.abilities : new AbilityCache(policy);
    // The path as the gateway would see it (lower-cased under policy.caseInsensitivePaths); one it would refuse is said so.
    const target = normalizeTarget(input.path, { caseInsensitive: services(request).config.policy.caseInsensitivePaths });
    if (!target.ok) throw new GerbangError("BAD_REQUEST_TARGET", { reason: target.reason, message: `The gateway refuses this path before any policy is asked: ${target.detail}` });
    return explainRequest(cache, await principalOf(services(request), input), {
      method: input.method,
      path: target.path,
      ...(input.body === undefined ? {} : { body: input.body }),
      ...(input.resource === undefined ? {} : { resource: input.resource }),
    });
  });
}

/** A stated principal, or a real user's roles and attributes (as a session would carry them). */
async function principalOf(s: OperatorServices, input: ExplainInput): Promise<RequestPrincipal> {
  if ((input.principal === undefined) === (input.user === undefined)) throw new GerbangError("MALFORMED_REQUEST", { message: "give principal or user" });
  const scopes = input.principal?.scopes ?? null;
  if (input.principal !== undefined) {
    const roles = input.principal.roles;
    return { roles, attributes: input.principal.attributes ?? {}, scopes, anonymous: roles.length === 1 && roles[0] === "anonymous" };
  }
  const user = await s.prisma.user.findUnique({ where: { email: (input.user ?? "").toLowerCase() }, select: { id: true, email: true, role: true, region: true } });
  if (user === null) throw new GerbangError("OPERATION_REFUSED", { message: `no user with email ${input.user ?? ""}` });
  return { roles: rolesFromField(user.role), attributes: { id: user.id, email: user.email, ...(user.region === null ? {} : { region: user.region }) }, scopes: null, anonymous: false };
}
