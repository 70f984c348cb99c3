// The three authenticators (src/auth/authenticators/) on a real Better Auth over the embedded
// database: each says "not mine" (null) for requests without its kind of credential, authenticates a
// good one, and rejects a present but bad one (a 401 at the stage, never anonymous).
import t from "tap";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/db/openDatabase.ts";
import { migrate } from "../../src/db/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/runtime/migrationsDir.ts";
import { createAuth } from "../../src/auth/createAuth.ts";
import { createVerifiedUser } from "../../src/auth/createUser.ts";
import { SessionResolver } from "../../src/auth/sessionResolver.ts";
import { bearerAuthenticator } from "../../src/auth/authenticators/bearerAuthenticator.ts";
import { findSessionCookie, sessionCookieAuthenticator } from "../../src/auth/authenticators/sessionCookieAuthenticator.ts";
import { apiKeyAuthenticator } from "../../src/auth/authenticators/apiKeyAuthenticator.ts";
import { ApiKeyStore } from "../../src/keys/apiKeyStore.ts";
import { generateApiKey } from "../../src/keys/apiKeyFormat.ts";

const dir = mkdtempSync(join(tmpdir(), "gerbang-authn-"));
const db = await openDatabase({ embeddedDir: join(dir, "pglite") });
t.teardown(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});
await migrate(db.executor, { migrationsDir: MIGRATIONS_DIR });
const auth = createAuth({
  prisma: db.prisma,
  secret: "a-test-secret-that-is-long-enough-for-better-auth",
  publicUrl: "http://localhost:8080",
  trustedOrigins: [],
  mail: { send: async () => undefined },
  sms: { send: async () => undefined },
  config: { auth: { requireEmailVerification: true, sessionExpiresInSec: 3600, sessionUpdateAgeSec: 600, twoFactor: { requiredForRoles: ["admin"], issuer: "Gerbang" } } as never, apiKeys: { maxExpiresInDays: 30 } as never },
});
const userId = await createVerifiedUser(auth, db.prisma, { email: "ana@example.test", password: "ana-password-123", role: "user", attributes: { region: "eu" } });
const signedIn = await auth.api.signInEmail({ body: { email: "ana@example.test", password: "ana-password-123" }, returnHeaders: true });
const token = signedIn.headers.get("set-auth-token") ?? "";
const cookie = (signedIn.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
const resolver = new SessionResolver(auth, 0);

t.test("bearer: only a signed Bearer token of the right shape is looked up", async (t) => {
  const bearer = bearerAuthenticator(resolver);
  t.equal(bearer.name, "bearer");
  t.equal(bearer.detect({}), null, "no Authorization: not mine");
  t.equal(bearer.detect({ authorization: "Basic abc" }), "Basic abc", "any Authorization is this authenticator's to judge");
  const ok = await bearer.authenticate(`Bearer ${token}`);
  t.match(ok, { kind: "authenticated", principal: { userId, roles: ["user"], authMethod: "session", attributes: { email: "ana@example.test", region: "eu" } } });
  t.match(await bearer.authenticate(`bearer ${token}`), { kind: "authenticated" }, "the scheme in any case");
  t.match(await bearer.authenticate(`  Bearer   ${token}  `), { kind: "authenticated" }, "surrounding and repeated spaces");
  for (const bad of ["Basic dXNlcjpwYXNz", `Token ${token}`, "Bearer", "Bearer short", `Bearer ${"a".repeat(513)}`, `Bearer ${token} extra`, `Bearer ${token}\u0000`, `Bearer ${token.split(".")[0] ?? ""}`]) {
    t.match(await bearer.authenticate(bad), { kind: "rejected" }, `${JSON.stringify(bad.slice(0, 40))}: rejected`);
  }
  t.match(await bearer.authenticate(`Bearer ${token.slice(0, -2)}xx`), { kind: "rejected" }, "a tampered signature");
});

t.test("the session cache holds at most auth.sessionCacheMaxEntries sessions, and serves beyond them", async (t) => {
  const bounded = new SessionResolver(auth, 60_000, null, 2);
  const bearer = bearerAuthenticator(bounded);
  for (let i = 0; i < 5; i++) {
    const session = await auth.api.signInEmail({ body: { email: "ana@example.test", password: "ana-password-123" }, returnHeaders: true });
    t.match(await bearer.authenticate(`Bearer ${session.headers.get("set-auth-token") ?? ""}`), { kind: "authenticated", principal: { userId } }, `session ${i + 1} is served`);
    t.ok(bounded.size <= 2, `${bounded.size} sessions cached`);
  }
  t.equal(bounded.size, 2, "the bound is reached, not exceeded");
});

t.test("session cookie: the exact cookie name, once", async (t) => {
  const byCookie = sessionCookieAuthenticator(resolver);
  t.equal(byCookie.name, "session-cookie");
  t.equal(byCookie.detect({}), null, "no Cookie: not mine");
  t.equal(byCookie.detect({ cookie: "lang=en; theme=dark" }), null, "other cookies: not mine");
  t.equal(findSessionCookie(`lang=en; ${cookie}`), cookie, "found among others, as name=value");
  t.equal(findSessionCookie(` ${cookie.replace("=", " = ")} `), cookie, "spaces around the name and value are trimmed");
  t.equal(findSessionCookie(`${cookie}; ${cookie}`), "!", "twice: ambiguous");
  t.equal(findSessionCookie(`${cookie}; __Secure-${cookie}`), "!", "both spellings: ambiguous");
  t.equal(findSessionCookie("better-auth.session_token"), null, "a name without a value is no cookie");
  t.equal(findSessionCookie("lang=en; better-auth.session_token ; theme=dark"), null, "nor is a name without a value among other cookies");
  t.equal(findSessionCookie(`Better-Auth.Session_Token=${cookie.split("=")[1] ?? ""}`), null, "another case is another cookie (Better Auth reads the exact name)");
  t.match(await byCookie.authenticate(cookie), { kind: "authenticated", principal: { userId } });
  t.match(await byCookie.authenticate("!"), { kind: "rejected", reason: "more than one session cookie" });
  t.match(await byCookie.authenticate("better-auth.session_token=forged.c2lnbmF0dXJl"), { kind: "rejected" }, "a forged cookie");
});

t.test("API key: the x-api-key header, trimmed, verified by the store", async (t) => {
  const store = new ApiKeyStore(db.prisma, { cacheTtlMs: 1000, negativeCacheTtlMs: 1000, cacheMaxEntries: 100, lastUsedFlushMs: 60_000 });
  t.teardown(() => store.close());
  const byKey = apiKeyAuthenticator(store);
  t.equal(byKey.name, "api-key");
  t.equal(byKey.detect({}), null, "no x-api-key: not mine");
  t.equal(byKey.detect({ "x-api-key": "k" }), "k");
  t.equal(byKey.detect({ "x-api-key": ["a", "b"] as never }), "a,b", "repeated: one unusable value, never the first alone");
  const unknown = generateApiKey();
  t.match(await byKey.authenticate(` ${unknown} `), { kind: "rejected", reason: "api key unknown" }, "well-formed but unknown");
  t.match(await byKey.authenticate("gb_live_nope"), { kind: "rejected" }, "malformed");
  t.match(await byKey.authenticate("a,b"), { kind: "rejected" }, "two keys joined");
});
