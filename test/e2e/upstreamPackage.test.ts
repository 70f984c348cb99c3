// `gerbang/upstream` as a service installs it (issue 17): packed with `npm pack` (which builds the
// JavaScript and .d.ts through `prepare`), unpacked into a bare folder that holds only jose and
// @casl/ability beside it, imported by its package name in a plain Node process, and used there on
// assertions a real gateway sent. The import must load nothing of the gateway.
import t from "tap";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { serviceGate } from "../helpers/services.ts";
import { assertionThrough, startGatewayEnv } from "../helpers/gatewayEnv.ts";

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "gerbang-upstream-pkg-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const { stdout: packed } = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: repo, maxBuffer: 64 * 1024 * 1024 });
const [tarball] = JSON.parse(packed.slice(packed.indexOf("["))) as Array<{ filename: string; files: Array<{ path: string }> }>;
if (tarball === undefined) throw new Error("npm pack reported nothing");
const consumer = join(dir, "service");
const installed = join(consumer, "node_modules", "gerbang");
mkdirSync(installed, { recursive: true });
await run("tar", ["-xzf", join(dir, tarball.filename), "-C", installed, "--strip-components=1"]);
// Only the helper's dependencies (and theirs) are beside it: an import of anything else fails outright.
for (const name of ["jose", "@casl/ability", "@ucast"]) {
  const target = join(consumer, "node_modules", name);
  mkdirSync(join(target, ".."), { recursive: true });
  symlinkSync(join(repo, "node_modules", name), target, "dir");
}
writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "a-service", private: true, type: "module" }));
// The service's own code: record every module Node resolves, then import the helper by name.
writeFileSync(
  join(consumer, "service.mjs"),
  `import { registerHooks } from "node:module";
const loaded = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); loaded.push(result.url); return result; } });
const helper = await import("gerbang/upstream");
const verify = helper.createAssertionVerifier({ jwksUrl: process.env.JWKS_URL, audience: "marketplace" });
const out = { loaded, exports: Object.keys(helper).sort(), identities: [] };
for (const token of JSON.parse(process.env.TOKENS)) {
  const identity = await verify(token);
  out.identities.push({
    userId: identity.userId, authMethod: identity.authMethod, roles: identity.roles,
    readOrder: identity.filter("read", "Order"), readOrderPrisma: identity.prismaWhere("read", "Order"),
    readInventory: identity.filter("read", "Inventory"), readProduct: identity.filter("read", "Product"),
  });
}
try { await verify("not-a-token"); } catch (error) { out.refused = { name: error.name, code: error.code, isAssertionError: error instanceof helper.AssertionError }; }
console.log(JSON.stringify(out));
`,
);

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());

t.test("the tarball ships the helper as JavaScript with types", async (t) => {
  const paths = tarball.files.map((f) => f.path);
  for (const file of ["dist/upstream/index.js", "dist/upstream/index.d.ts", "dist/upstream/verifyAssertion.js", "dist/upstream/dataFilter.d.ts"]) {
    t.ok(paths.includes(file), `${file} is in the package`);
  }
  const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { exports: Record<string, { types: string; default: string }> };
  t.same(manifest.exports["./upstream"], { types: "./dist/upstream/index.d.ts", default: "./dist/upstream/index.js" });
  const types = readFileSync(join(installed, "dist/upstream/index.d.ts"), "utf8");
  t.match(types, /createAssertionVerifier/, "the declarations name the entry point");
  t.notOk(existsSync(join(installed, "dist/upstream/index.ts")), "no TypeScript source under dist (Node does not strip types in node_modules)");
});

const assertionFor = (headers: Record<string, string>): Promise<string> => assertionThrough(env, headers);

t.test("imported by name in a bare Node process: the gateway's identity and data filters, nothing of the gateway loaded", async (t) => {
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const created = await fetch(`${env.url}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ name: "catalogue feed", scopes: ["catalog:read"], expiresIn: "1d" }),
  });
  t.equal(created.status, 201, "an admin's catalog:read key");
  const { key } = (await created.json()) as { key: string };
  const tokens = [
    await assertionFor({ authorization: `Bearer ${sales.token}` }),
    await assertionFor({ authorization: `Bearer ${user.token}` }),
    await assertionFor({ "x-api-key": key }),
    await assertionFor({}),
  ];
  const { stdout } = await run(process.execPath, ["service.mjs"], {
    cwd: consumer,
    env: { PATH: process.env.PATH ?? "", JWKS_URL: `${env.url}/.well-known/jwks.json`, TOKENS: JSON.stringify(tokens) },
  });
  const out = JSON.parse(stdout) as {
    loaded: string[];
    exports: string[];
    identities: Array<Record<string, unknown> & { userId: string | null }>;
    refused: { name: string; code: string; isAssertionError: boolean };
  };

  const files = out.loaded.filter((url) => url.startsWith("file:"));
  t.ok(files.some((url) => url.includes("/node_modules/gerbang/dist/upstream/index.js")), "the helper came from the package's dist");
  const foreign = files.filter((url) => !/\/node_modules\/(gerbang\/dist\/upstream|jose|@casl\/ability|@ucast)\//.test(url));
  t.same(foreign, [], "only the helper, jose and @casl/ability (with its @ucast parts) were loaded");
  t.notOk(out.loaded.some((url) => /fastify|prisma|better-auth|ioredis|pino/.test(url)), "no Fastify, Prisma, Better Auth, Redis client or logger");
  t.same(out.exports, ["AssertionError", "FilterError", "createAssertionVerifier", "createPermissionGuard", "expressGuard", "fastifyGuard", "filterFor", "matchesFilter", "requestGuard", "simplify", "toPrismaWhere", "webGuard"]);

  const [salesId, userId, keyId, anonymous] = out.identities;
  t.match(salesId, { authMethod: "session", roles: ["sales"], readOrder: { field: "region", op: "eq", value: "eu" }, readOrderPrisma: { region: { equals: "eu" } }, readInventory: true, readProduct: true }, "sales: orders of their region");
  t.match(userId, { authMethod: "session", readOrder: { field: "buyerId", op: "eq", value: userId?.userId }, readInventory: false }, "a user: their own orders, no inventory");
  t.match(keyId, { authMethod: "api-key", readOrder: false, readOrderPrisma: { id: { in: [] } }, readInventory: false, readProduct: true }, "a catalog:read key of an admin: products only (owner ∩ scopes)");
  t.match(anonymous, { authMethod: "anonymous", userId: null, readOrder: false, readProduct: true }, "anonymous: products only");
  t.same(out.refused, { name: "AssertionError", code: "ASSERTION_INVALID", isAssertionError: true }, "a bad token is refused with the helper's error class");
});
