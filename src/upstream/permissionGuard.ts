// Route guards for services behind the gateway, in the shape their handlers already use:
// `requirePermission({ order: ["read"] })`. One framework-free core (headers in, identity or a
// 401/403 answer out) and thin adapters: Web `Request`/`Response` (Next.js route handlers and other
// fetch-style servers), a Fastify plugin (`request.gerbang`) and Connect/Express middleware.
// Nothing here imports a framework: the adapters are typed structurally.
import { AssertionError, createAssertionVerifier } from "./verifyAssertion.ts";
import type { AssertionVerifierOptions, VerifiedIdentity } from "./verifyAssertion.ts";

/** Resource name → actions, e.g. `{ order: ["read"], shop: ["update"] }`. Every pair must be allowed. */
export type Permissions = Readonly<Record<string, readonly string[]>>;

export interface PermissionGuardOptions extends AssertionVerifierOptions {
  /** A resource name as the service writes it → the policy's subject; default "order" → "Order". */
  subjectOf?: (resource: string) => string;
}

export type GuardResult =
  | { ok: true; identity: VerifiedIdentity }
  | { ok: false; status: 401 | 403; body: { error: string; message: string } };

export interface PermissionGuard {
  /**
   * Verifies the request's assertion and checks every permission on the type: "may this caller read
   * some Order". Which records is then the handler's, with `identity.filter()` / `prismaWhere()`, or
   * `identity.ability.can(action, subject(type, record))` for one record.
   */
  check(headers: HeaderSource, permissions?: Permissions): Promise<GuardResult>;
}

/** A Fetch `Headers` object or Node's `IncomingHttpHeaders`. */
export type HeaderSource = { get(name: string): string | null } | Readonly<Record<string, string | string[] | undefined>>;

const ASSERTION_HEADER = "x-gerbang-assertion";
const capitalised = (resource: string): string => resource.charAt(0).toUpperCase() + resource.slice(1);

function assertionOf(headers: HeaderSource): string {
  if (typeof headers.get === "function") return (headers as { get(name: string): string | null }).get(ASSERTION_HEADER) ?? "";
  const value = (headers as Readonly<Record<string, string | string[] | undefined>>)[ASSERTION_HEADER];
  // Two assertion headers are one too many: refuse rather than pick one.
  return typeof value === "string" ? value : "";
}

export function createPermissionGuard(options: PermissionGuardOptions): PermissionGuard {
  const { subjectOf = capitalised, ...verifierOptions } = options;
  const verify = createAssertionVerifier(verifierOptions);
  return {
    async check(headers, permissions = {}) {
      let identity: VerifiedIdentity;
      try {
        identity = await verify(assertionOf(headers));
      } catch (error) {
        // Anything but a verification failure (a bug, an exhausted process) is not the caller's fault.
        if (!(error instanceof AssertionError)) throw error;
        return { ok: false, status: 401, body: { error: error.code, message: "the request does not carry a valid gateway assertion" } };
      }
      for (const [resource, actions] of Object.entries(permissions)) {
        for (const action of actions) {
          if (!identity.ability.can(action, subjectOf(resource))) {
            return { ok: false, status: 403, body: { error: "FORBIDDEN", message: `not allowed to ${action} ${resource}` } };
          }
        }
      }
      return { ok: true, identity };
    },
  };
}

/**
 * For Web `Request` handlers (Next.js route handlers): the identity, or the `Response` to return.
 *   const auth = await requirePermission(request, { order: ["read"] });
 *   if (auth instanceof Response) return auth;
 */
export function webGuard(options: PermissionGuardOptions): (request: { headers: HeaderSource }, permissions?: Permissions) => Promise<VerifiedIdentity | Response> {
  const guard = createPermissionGuard(options);
  return async (request, permissions) => {
    const result = await guard.check(request.headers, permissions);
    return result.ok ? result.identity : Response.json(result.body, { status: result.status });
  };
}

export interface RequestGuardOptions extends PermissionGuardOptions {
  /**
   * Where the current request's headers come from, for handlers that do not get the request
   * passed in: in Next.js, `headers` from `next/headers` (sync or async, both work).
   */
  headers: () => HeaderSource | Promise<HeaderSource>;
}

/**
 * `requirePermission({ order: ["read"] })` for Next.js route handlers and server code, the shape the
 * marketplace's handlers already use: the caller's identity, or a JSON 401/403 `Response` to return.
 *   export const requirePermission = requestGuard({ jwksUrl, audience, headers });
 *   const auth = await requirePermission({ order: ["read"] });
 *   if (auth instanceof Response) return auth;
 * The verifier is made on the first call, so a module that builds the guard can be imported where
 * its configuration is not set yet (Next.js loads route modules while it builds).
 */
export function requestGuard(options: RequestGuardOptions | (() => RequestGuardOptions)): (permissions?: Permissions) => Promise<VerifiedIdentity | Response> {
  let made: { guard: PermissionGuard; headers: RequestGuardOptions["headers"] } | undefined;
  return async (permissions) => {
    if (made === undefined) {
      const { headers, ...guardOptions } = typeof options === "function" ? options() : options;
      made = { guard: createPermissionGuard(guardOptions), headers };
    }
    const result = await made.guard.check(await made.headers(), permissions);
    return result.ok ? result.identity : Response.json(result.body, { status: result.status });
  };
}

interface NodeLikeRequest {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  gerbang?: VerifiedIdentity;
}
interface NodeLikeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/** Connect/Express middleware: sets `req.gerbang`, or answers 401/403 as JSON. */
export function expressGuard(options: PermissionGuardOptions): (permissions?: Permissions) => (req: NodeLikeRequest, res: NodeLikeResponse, next: (error?: unknown) => void) => void {
  const guard = createPermissionGuard(options);
  return (permissions) => (req, res, next) => {
    // next() runs the rest of the chain inside this promise: a handler that throws must reach the
    // framework's error handling once, and never become an unhandled rejection of the process.
    let handedOn = false;
    const proceed = (error?: unknown): void => {
      if (handedOn) return;
      handedOn = true;
      next(error);
    };
    guard
      .check(req.headers, permissions)
      .then((result) => {
        if (result.ok) {
          req.gerbang = result.identity;
          proceed();
          return;
        }
        res.statusCode = result.status;
        res.setHeader("content-type", "application/json; charset=utf-8");
        res.end(JSON.stringify(result.body));
      })
      .catch(proceed);
  };
}

interface FastifyLikeReply {
  code(status: number): FastifyLikeReply;
  send(body: unknown): unknown;
}
interface FastifyLikeRequest {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  gerbang?: VerifiedIdentity;
  routeOptions: { config?: unknown };
}
interface FastifyLikeInstance {
  decorateRequest(name: string, value: unknown): unknown;
  addHook(name: "preHandler", hook: (request: FastifyLikeRequest, reply: FastifyLikeReply) => Promise<unknown>): unknown;
}

/**
 * A Fastify plugin: every request gets `request.gerbang` (its verified identity) or a 401; a route
 * with `config: { gerbang: { order: ["read"] } }` also gets its permissions checked (403). Register
 * it at the root (or wrap it in fastify-plugin) so its hook covers the routes.
 */
export function fastifyGuard(options: PermissionGuardOptions): (app: FastifyLikeInstance) => Promise<void> {
  const guard = createPermissionGuard(options);
  const plugin = async (app: FastifyLikeInstance): Promise<void> => {
    app.decorateRequest("gerbang", undefined);
    app.addHook("preHandler", async (request, reply) => {
      const config = request.routeOptions.config as { gerbang?: Permissions } | undefined;
      const result = await guard.check(request.headers, config?.gerbang);
      if (!result.ok) return reply.code(result.status).send(result.body);
      request.gerbang = result.identity;
      return undefined;
    });
  };
  // Fastify's own marker for "do not encapsulate", so the hook applies beyond the plugin's scope
  // without the fastify-plugin dependency.
  Object.assign(plugin, { [Symbol.for("skip-override")]: true });
  return plugin;
}
