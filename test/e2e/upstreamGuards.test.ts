// The helper's route guards (issue 17) on assertions a real gateway signed: Web Request handlers
// (the shape of a Next.js route handler), a Fastify plugin and Connect/Express-style middleware.
// Same answers from all three: 401 without a valid assertion, 403 without the permission.
import t from "tap";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { serviceGate } from "../helpers/services.ts";
import { assertionThrough, startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { expressGuard, fastifyGuard, webGuard, type Permissions } from "../../src/upstream/permissionGuard.ts";
import type { VerifiedIdentity } from "../../src/upstream/verifyAssertion.ts";

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
const options = { jwksUrl: `${env.url}/.well-known/jwks.json`, audience: "marketplace" };

const assertionFor = (headers: Record<string, string>): Promise<string> => assertionThrough(env, headers);
const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const userToken = await assertionFor({ authorization: `Bearer ${user.token}` });
const anonymousToken = await assertionFor({});

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
const webRequest = (req: IncomingMessage): Request => {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers.set(name, value);
  return new Request(`http://service${req.url ?? "/"}`, { headers });
};
const permissionsOf = (url: string | undefined): Permissions => (url?.startsWith("/inventory") ? { inventory: ["read"] } : { order: ["read"] });

// Web Request → Response, as a Next.js route handler is written.
const requirePermission = webGuard(options);
const webUrl = await listen(createServer((req, res) => {
  void (async () => {
    const auth = await requirePermission(webRequest(req), permissionsOf(req.url));
    const response = auth instanceof Response ? auth : Response.json({ userId: auth.userId });
    res.writeHead(response.status, { "content-type": "application/json" }).end(await response.text());
  })();
}));

// Connect/Express middleware on a bare node:http server.
const guard = expressGuard(options);
const expressUrl = await listen(createServer((req, res) => {
  guard(permissionsOf(req.url))(req as IncomingMessage & { gerbang?: VerifiedIdentity }, res, (error) => {
    if (error !== undefined) res.writeHead(500).end();
    else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ userId: (req as { gerbang?: VerifiedIdentity }).gerbang?.userId }));
  });
}));

// A Fastify plugin with per-route permissions in the route config. (This test process has the
// gateway's own FastifyRequest augmentation loaded, hence the casts a service would not need.)
const app = Fastify();
await app.register(fastifyGuard(options) as never);
app.get("/orders", { config: { gerbang: { order: ["read"] } } }, async (request) => ({ userId: (request as unknown as { gerbang?: VerifiedIdentity }).gerbang?.userId }));
app.get("/inventory", { config: { gerbang: { inventory: ["read"] } } }, async () => ({ ok: true }));
const fastifyUrl = await app.listen({ port: 0, host: "127.0.0.1" });
t.teardown(() => app.close());

for (const [name, base] of [["Web Request", webUrl], ["Connect/Express", expressUrl], ["Fastify", fastifyUrl]] as const) {
  t.test(`${name}: 401 without a valid assertion, 403 without the permission, the identity otherwise`, async (t) => {
    const call = async (path: string, token?: string): Promise<[number, Record<string, unknown>]> => {
      const response = await fetch(`${base}${path}`, { headers: token === undefined ? {} : { "x-gerbang-assertion": token } });
      return [response.status, (await response.json()) as Record<string, unknown>];
    };
    t.match(await call("/orders"), [401, { error: "ASSERTION_MISSING" }], "no assertion");
    t.match(await call("/orders", "e30.e30.e30"), [401, { error: /^ASSERTION_/ }], "a made-up assertion");
    t.same(await call("/orders", userToken), [200, { userId: user.userId }], "a user may read orders (their own: the handler filters)");
    t.match(await call("/inventory", userToken), [403, { error: "FORBIDDEN", message: "not allowed to read inventory" }], "a user may not read inventory");
    t.match(await call("/orders", anonymousToken), [403, { error: "FORBIDDEN" }], "anonymous may not read orders");
  });
}

t.test("Connect/Express: a handler that throws reaches next once, never the process", async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on("unhandledRejection", onRejection);
  t.teardown(() => process.off("unhandledRejection", onRejection));
  const calls: unknown[] = [];
  const req = { headers: { "x-gerbang-assertion": userToken } };
  const res = { statusCode: 200, setHeader: () => undefined, end: () => undefined };
  await new Promise<void>((resolve) => {
    guard({ order: ["read"] })(req, res, (error) => {
      calls.push(error);
      setTimeout(resolve, 50);
      throw new Error("the handler failed");
    });
  });
  await new Promise((r) => setTimeout(r, 50));
  t.same(calls, [undefined], "next was called once, without an error");
  t.same(rejections, [], "no unhandled rejection");
});
