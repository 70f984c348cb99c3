// Bypass regression suite, the auth routes around the proxy (issue 12): every route that checks a
// password, code or token is a guessing oracle and is throttled like sign-in (per account, failures
// weighted); get-session and /api/keys count against the caller like proxied requests, forged
// tokens as refused credentials; a revoking request with two session credentials is refused.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";

const HOUR = 3_600_000;
const pgMissing = await serviceGate("postgres");
const limits = {
  session: { max: 9, windowMs: HOUR },
  anonymous: { max: 12, windowMs: HOUR },
  auth: {
    signIn: { perAccount: { max: 7, windowMs: HOUR }, perAddress: { max: 1000, windowMs: HOUR }, failureWeight: 3 },
    passwordReset: { perAccount: { max: 1000, windowMs: HOUR }, perAddress: { max: 1000, windowMs: HOUR } },
    otp: { perAccount: { max: 1000, windowMs: HOUR }, perAddress: { max: 4, windowMs: HOUR }, failureWeight: 1 },
  },
};
// Windows are aligned to the clock: start far enough from the next edge that none resets mid-test.
const left = HOUR - (Date.now() % HOUR);
if (left < 120_000) await new Promise((r) => setTimeout(r, left + 200));
const env = await startGatewayEnv({ postgres: pgMissing === false, config: { rateLimit: limits } });
t.teardown(() => env.close());

const post = (path: string, body: unknown, headers: Record<string, string>): Promise<Response> =>
  fetch(`${env.url}/api/auth${path}`, { method: "POST", headers: { "content-type": "application/json", origin: env.url, ...headers }, body: JSON.stringify(body) });
const reasonOf = async (response: Response): Promise<string | undefined> => ((await response.json()) as { error?: { reason?: string } }).error?.reason;

t.test("verify-password and change-password share the caller's sign-in bucket, failures weighted", async (t) => {
  // A user of the test's own: no sign-in attempt of the helper (made while demo users are seeded) counts against it.
  const created = await runGerbang(["users", "create", "--email", "guesser@example.test", "--password", "guesser-password-1", "--role", "user", "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  t.equal(created.code, 0, `users create: ${created.stderr}`);
  const user = await env.signIn("guesser@example.test", "guesser-password-1");
  const bearer = { authorization: `Bearer ${user.token}` };
  // An email in the body must not make a fresh bucket: Better Auth ignores the field, the caller is the
  // account. The sign-in counted 1 of its 7, each refused guess counts 3.
  const wrong1 = await post("/verify-password", { password: "not-the-password", email: "random-1@example.test" }, bearer);
  t.equal(wrong1.status, 400, "a wrong password is refused by Better Auth");
  const wrong2 = await post("/change-password", { currentPassword: "not-the-password", newPassword: "a-new-password-123", email: "random-2@example.test" }, bearer);
  t.equal(wrong2.status, 400, "so is a wrong current password");
  const locked = await post("/verify-password", { password: "guesser-password-1" }, bearer);
  t.equal(locked.status, 429, "the budget is spent: the next guess is throttled, even a right one");
  t.equal(await reasonOf(locked), "SIGN_IN_ACCOUNT");
  const lockedChange = await post("/change-password", { currentPassword: "guesser-password-1", newPassword: "a-new-password-123" }, bearer);
  t.equal(lockedChange.status, 429, "change-password too");
  t.ok(Number(locked.headers.get("retry-after")) > 0, "with Retry-After");
  const signIn = await post("/sign-in/email", { email: "guesser@example.test", password: "guesser-password-1" }, {});
  t.equal(signIn.status, 429, "one password, one budget: sign-in to that account is throttled too");
  t.equal(await reasonOf(signIn), "SIGN_IN_ACCOUNT");
  const twoCredentials = await post("/verify-password", { password: "x" }, { ...bearer, cookie: "better-auth.session_token=abc.def" });
  t.equal(twoCredentials.status, 400, "with two credentials the account is unknown: refused, not counted per address alone");
  t.match(await twoCredentials.json(), { error: { code: "AMBIGUOUS_CREDENTIALS", reason: "BEARER_AND_COOKIE" } });
  const other = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
  const fine = await post("/verify-password", { password: "demo-buyer-password" }, { authorization: `Bearer ${other.token}` });
  t.equal(fine.status, 200, "another account is not affected");
});

t.test("verify-email with guessed tokens (GET) is throttled per address", async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await fetch(`${env.url}/api/auth/verify-email?token=guess-${i}`, { redirect: "manual" })).status);
  t.equal(statuses.filter((s) => s === 429).length, 2, `4 guesses, then 429 (${statuses.join(", ")})`);
  t.notOk(statuses.slice(0, 4).includes(429), "the first four reach Better Auth");
});

t.test("a revoking request with two session credentials is refused; both sessions live on", async (t) => {
  const a = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const b = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const both = await post("/sign-out", {}, { authorization: `Bearer ${a.token}`, cookie: b.cookie });
  t.equal(both.status, 400, "bearer and cookie: 400");
  t.match(await both.json(), { error: { code: "AMBIGUOUS_CREDENTIALS", reason: "BEARER_AND_COOKIE" } });
  const two = await post("/revoke-other-sessions", {}, { cookie: `${a.cookie}; ${b.cookie}` });
  t.equal(two.status, 400, "two session cookies: 400");
  t.match(await two.json(), { error: { code: "AMBIGUOUS_CREDENTIALS", reason: "TWO_SESSION_COOKIES" } });
  for (const [name, token] of [["first", a.token], ["second", b.token]] as const) {
    const session = await fetch(`${env.url}/api/auth/get-session`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(((await session.json()) as { user?: { email?: string } } | null)?.user?.email, "sales@demo.gerbang.dev", `the ${name} session still works`);
  }
  const single = await post("/sign-out", {}, { authorization: `Bearer ${a.token}` });
  t.equal(single.status, 200, "one credential: signed out");
});

t.test("get-session and /api/keys count against the caller's bucket; forged tokens as refused credentials", async (t) => {
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const headers = { authorization: `Bearer ${admin.token}` };
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await fetch(`${env.url}/api/auth/get-session`, { headers })).status);
  for (let i = 0; i < 4; i++) statuses.push((await fetch(`${env.url}/api/keys`, { headers })).status);
  for (let i = 0; i < 2; i++) statuses.push((await fetch(`${env.url}/api/auth/list-sessions`, { headers })).status);
  t.same(statuses.slice(0, 9), Array(9).fill(200), "the session bucket's 9 requests, on get-session, /api/keys and list-sessions together");
  t.same(statuses.slice(9), [429, 429, 429], "then 429");
  const limited = await fetch(`${env.url}/api/keys`, { headers });
  t.equal(await reasonOf(limited), "SESSION");

  const forged: number[] = [];
  for (let i = 0; i < 14; i++) {
    const response = await fetch(`${env.url}/api/auth/get-session`, { headers: { authorization: `Bearer forged${i}.c2lnbmF0dXJl` } });
    forged.push(response.status);
    await response.arrayBuffer();
  }
  t.equal(forged.filter((s) => s === 429).length, 2, `the refused-credentials bucket (12) throttles forged tokens (${forged.join(", ")})`);
  const keysForged = await fetch(`${env.url}/api/keys`, { headers: { authorization: "Bearer forged.c2lnbmF0dXJl" } });
  t.equal(keysForged.status, 429, "and /api/keys shares it");
  t.equal(await reasonOf(keysForged), "REFUSED_CREDENTIALS");
});
