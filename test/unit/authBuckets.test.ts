// Which Better Auth routes get the strict auth buckets, derived from the endpoints Better Auth
// registers (issue 12): every endpoint that checks a password, code or token must have one, and a
// plugin that adds such an endpoint without one must stop the gateway from starting.
import t from "tap";
import { betterAuth } from "better-auth";
import { emailOTP, phoneNumber, twoFactor, magicLink, username } from "better-auth/plugins";
import { createAuth } from "../../src/auth/createAuth.ts";
import { authBucketName, unthrottledCredentialRoutes, type AuthEndpoint } from "../../src/ratelimit/authBuckets.ts";

const endpoints = (api: object): AuthEndpoint[] => Object.values(api) as AuthEndpoint[];

t.test("the gateway's own Better Auth: every credential-checking route has a bucket", async (t) => {
  const auth = createAuth({
    prisma: {} as never,
    secret: "s".repeat(40),
    publicUrl: "http://localhost:8080",
    trustedOrigins: [],
    mail: { send: async () => undefined },
  sms: { send: async () => undefined },
    config: { auth: { requireEmailVerification: true, sessionExpiresInSec: 3600, sessionUpdateAgeSec: 600, twoFactor: { requiredForRoles: ["admin"], issuer: "Gerbang" } } as never, apiKeys: { maxExpiresInDays: 365 } as never },
  });
  t.same(unthrottledCredentialRoutes(endpoints(auth.api)), [], "nothing unthrottled");
  // What a user would see: these answer 429 once their bucket is spent.
  const expected: Array<[string, string]> = [
    ["/sign-in/email", "signIn"], ["/verify-password", "signIn"], ["/change-password", "signIn"], ["/delete-user", "signIn"],
    ["/delete-user/callback", "signIn"], ["/revoke-session", "signIn"], ["/reset-password", "passwordReset"], ["/reset-password/abc", "passwordReset"],
    ["/request-password-reset", "passwordReset"], ["/verify-email", "otp"], ["/callback/google", "signIn"], ["/link-social", "signIn"], ["/change-email", "otp"], ["/sign-up/email", "otp"], ["/send-verification-email", "otp"],
  ];
  for (const [path, bucket] of expected) t.equal(authBucketName(path), bucket, `${path}: ${bucket}`);
  for (const path of ["/get-session", "/sign-out", "/list-sessions", "/update-user", "/admin/set-role", "/ok"]) t.equal(authBucketName(path), null, `${path}: no auth bucket`);
});

t.test("plugins with codes and passwords (two-factor, phone number, email OTP, magic link, username) are covered", async (t) => {
  const auth = betterAuth({
    secret: "s".repeat(40),
    baseURL: "http://localhost:8080",
    basePath: "/api/auth",
    emailAndPassword: { enabled: true },
    plugins: [
      twoFactor(),
      phoneNumber({ sendOTP: async () => undefined }),
      emailOTP({ sendVerificationOTP: async () => undefined }),
      magicLink({ sendMagicLink: async () => undefined }),
      username(),
    ],
  });
  const paths = endpoints(auth.api).map((e) => e.path ?? "");
  t.ok(paths.some((p) => p.startsWith("/two-factor/verify-")), "two-factor's routes are among them");
  t.same(unthrottledCredentialRoutes(endpoints(auth.api)), [], "each has a bucket");
  t.equal(authBucketName("/two-factor/verify-totp"), "signIn");
  t.equal(authBucketName("/two-factor/send-otp"), "otp", "sending a code counts as a message");
  t.equal(authBucketName("/phone-number/verify"), "signIn");
  t.equal(authBucketName("/sign-in/username"), "signIn");
});

t.test("an endpoint that checks a secret without a bucket is reported, so the start fails", async (t) => {
  const plugin: AuthEndpoint[] = [
    { path: "/my-plugin/confirm", options: { method: "POST", body: { shape: { code: {} } } } },
    { path: "/my-plugin/link/:token", options: { method: "GET" } },
    { path: "/my-plugin/settings", options: { method: "POST", body: { shape: { theme: {} } } } },
    { path: "/my-plugin/lookup", options: { method: "GET", query: { shape: { token: {} } } } },
    // zod 4 wrappers: the fields of an optional object, a pipe's input, an intersection, a union.
    { path: "/my-plugin/wrapped", options: { method: "GET", query: { _zod: { def: { type: "optional", innerType: { shape: { code: {} } } } } } } },
    { path: "/my-plugin/piped", options: { method: "POST", body: { _zod: { def: { type: "pipe", in: { _zod: { def: { type: "union", options: [{ shape: { name: {} } }, { shape: { otp: {} } }] } } } } } } } },
    { path: "/my-plugin/plain", options: { method: "POST", body: { _zod: { def: { type: "intersection", left: { shape: { a: {} } }, right: { shape: { b: {} } } } } } } },
    { options: { method: "POST", body: { shape: { password: {} } }, metadata: { SERVER_ONLY: true } } },
    { path: "/admin/set-user-password", options: { method: "POST", body: { shape: { password: {} } } } },
  ];
  t.same(unthrottledCredentialRoutes(plugin), ["/my-plugin/confirm", "/my-plugin/link/:token", "/my-plugin/lookup", "/my-plugin/wrapped", "/my-plugin/piped"], "a code, a token in the path, in the query, behind zod wrappers");
});
