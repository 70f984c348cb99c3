// Rate limits end to end: two gateway processes share one PostgreSQL and a Redis server the test
// owns. Limits per key tier, per user and per client address hold across both instances; spoofed
// forwarding headers and path spellings land in the same bucket; the auth buckets count per
// account and per address with failures weighted; Redis going away and coming back follows the
// documented modes. A third gateway behind a trusted proxy checks IPv6 /64 aggregation.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv } from "../helpers/gatewayEnv.ts";
import { runGerbang } from "../helpers/processes.ts";
import { rawRequest } from "../helpers/rawHttp.ts";
import { redisServerGate, startOwnedRedis } from "../helpers/redisServer.ts";
import { eventually } from "../helpers/eventually.ts";

const skip = (await serviceGate("postgres")) || redisServerGate();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HOUR = 3_600_000;
const errorOf = async (response: Response): Promise<{ code?: string; reason?: string }> => ((await response.json()) as { error: { code?: string; reason?: string } }).error;

/** Windows are fixed (aligned to the clock): start far enough from the next edge that no window resets mid-test. */
async function awayFromWindowEdge(windowMs: number, needMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await sleep(left + 200);
}

const limits = {
  tiers: { "partner-basic": { max: 7, windowMs: HOUR }, "partner-pro": { max: 1_000_000, windowMs: HOUR } },
  session: { max: 9, windowMs: HOUR },
  anonymous: { max: 12, windowMs: HOUR },
  auth: {
    signIn: { perAccount: { max: 6, windowMs: HOUR }, perAddress: { max: 60, windowMs: HOUR }, failureWeight: 3 },
    passwordReset: { perAccount: { max: 2, windowMs: HOUR }, perAddress: { max: 60, windowMs: HOUR } },
    otp: { perAccount: { max: 2, windowMs: HOUR }, perAddress: { max: 60, windowMs: HOUR } },
  },
};

t.test("rate limits on two instances sharing one Redis", { skip }, async (t) => {
  await awayFromWindowEdge(HOUR, 120_000);
  const redis = await startOwnedRedis();
  t.teardown(() => redis.close());
  const env: GatewayEnv = await startGatewayEnv({ postgres: true, instances: 2, config: { redis: { url: redis.url }, rateLimit: limits } });
  t.teardown(() => env.close());
  const [a, b] = env.urls as [string, string];
  const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  const issue = async (tier: string): Promise<string> => {
    const run = await cli("keys", "create", "--owner", "ops@acme.example", "--name", `k-${tier}`, "--tier", tier, "--scopes", "catalog:read");
    if (run.code !== 0) throw new Error(run.stderr);
    return run.stdout.trim().split("\n").at(-1) ?? "";
  };
  const partner = await cli("users", "create", "--email", "ops@acme.example", "--password", "acme-partner-password", "--role", "partner");
  t.equal(partner.code, 0, partner.stderr);

  await t.test("an API key's tier limit is one limit across both instances", async (t) => {
    const basic = await issue("partner-basic");
    const pro = await issue("partner-pro");
    await env.clearReceived();
    const statuses: number[] = [];
    let first: Response | null = null;
    let refused: Response | null = null;
    for (let i = 0; i < 12; i++) {
      const response = await fetch(`${i % 2 === 0 ? a : b}/api/products`, { headers: { "x-api-key": basic } });
      statuses.push(response.status);
      if (i === 0) first = response;
      if (response.status === 429 && refused === null) refused = response;
      else await response.arrayBuffer();
    }
    t.same(statuses, [200, 200, 200, 200, 200, 200, 200, 429, 429, 429, 429, 429], "7 admitted in all, alternating instances");
    t.equal((await env.received()).length, 7, "the upstream saw exactly the admitted requests");
    t.equal(first?.headers.get("ratelimit-limit"), "7");
    t.equal(first?.headers.get("ratelimit-remaining"), "6");
    const reset = Number(first?.headers.get("ratelimit-reset"));
    t.ok(reset > 0 && reset <= 3600, `RateLimit-Reset in seconds (${reset})`);
    t.equal(refused?.headers.get("ratelimit-remaining"), "0");
    const retryAfter = Number(refused?.headers.get("retry-after"));
    t.ok(retryAfter > 0 && retryAfter <= 3600, `429 carries Retry-After (${retryAfter})`);
    t.match(refused?.headers.get("content-type") ?? "", /application\/json/);
    t.match(await errorOf(refused as Response), { code: "RATE_LIMITED", reason: "KEY_TIER" });
    t.equal((await fetch(`${b}/api/products`, { headers: { "x-api-key": pro } })).status, 200, "another key (another tier) is unaffected");
  });

  await t.test("a user's sessions share one limit across instances, cookie or bearer", async (t) => {
    const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const headers: Record<string, string> = i % 2 === 0 ? { authorization: `Bearer ${user.token}` } : { cookie: user.cookie };
      const response = await fetch(`${i % 2 === 0 ? a : b}/api/products`, { headers });
      statuses.push(response.status);
      if (response.status === 429) t.match(await errorOf(response), { code: "RATE_LIMITED", reason: "SESSION" });
      else await response.arrayBuffer();
    }
    t.same(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
  });

  await t.test("an endpoint's own limit from the policy counts apart from the session bucket", async (t) => {
    const buyer = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
    const create = async (path: string, body: object): Promise<string> => {
      const response = await fetch(`${a}${path}`, { method: "POST", headers: { authorization: `Bearer ${buyer.token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      return String(((await response.json()) as { id?: string }).id);
    };
    const shopId = await create("/api/shops", { name: "Toko Tani", region: "eu" });
    const productId = await create(`/api/shops/${shopId}/products`, { name: "Chili seed", priceCents: 900 });
    const order = (base: string): Promise<Response> =>
      fetch(`${base}/api/orders`, {
        method: "POST",
        headers: { authorization: `Bearer ${buyer.token}`, "content-type": "application/json" },
        body: JSON.stringify({ productId, quantity: 1, shippingAddress: "Jl. Sudirman 5", region: "eu" }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const response = await order(i % 2 === 0 ? a : b);
      statuses.push(response.status);
      if (response.status === 429) {
        t.equal(response.headers.get("ratelimit-limit"), "10");
        t.match(await errorOf(response), { code: "RATE_LIMITED", reason: "ENDPOINT" });
      } else if (response.status !== 201) t.fail(`order ${i}: ${response.status} ${await response.text()}`);
      else await response.arrayBuffer();
    }
    t.same(statuses, [...Array<number>(10).fill(201), 429], "orders.create allows 10 a minute (policy 2026-12-01)");
    const read = await fetch(`${a}/api/products`, { headers: { authorization: `Bearer ${buyer.token}` } });
    t.equal(read.status, 200, "the orders did not use up the buyer's session bucket");
    t.equal(read.headers.get("ratelimit-limit"), "9");
  });

  await t.test("spoofed forwarding headers, header case and path spellings land in one address bucket", async (t) => {
    const spoofs = [
      "X-Forwarded-For: 203.0.113.1",
      "x-forwarded-for: 203.0.113.2, 198.51.100.9",
      "X-FORWARDED-FOR: 10.0.0.1",
      "Forwarded: for=192.0.2.60;proto=https",
      "X-Real-IP: 192.0.2.61",
      "X-Real-Ip: 192.0.2.62\r\nX-Client-IP: 192.0.2.63",
      "True-Client-IP: 192.0.2.64",
      "X-Forwarded-For: 2001:db8::1",
      "CF-Connecting-IP: 192.0.2.65",
      "X-Forwarded-For: 127.0.0.2",
    ];
    const paths = ["/api/products", "/api//products", "/api/%70roducts", "//api/products"];
    const remaining: string[] = [];
    for (const [i, spoof] of spoofs.entries()) {
      const raw = await rawRequest(i % 2 === 0 ? a : b, `GET ${paths[i % paths.length]} HTTP/1.1\r\nHost: shop.example\r\n${spoof}\r\nConnection: close\r\n\r\n`);
      t.equal(raw.status, 200, `${spoof.split("\r\n")[0]}: admitted`);
      remaining.push(/\r\nratelimit-remaining: (\d+)/i.exec(raw.headers)?.[1] ?? "?");
    }
    t.same(remaining, ["11", "10", "9", "8", "7", "6", "5", "4", "3", "2"], "every spelling counted in the same bucket");
    // Refused credentials count in a bucket of their own, not in the anonymous one.
    const badKey = `gb_live_${"A".repeat(43)}000000`;
    for (const base of [a, b]) t.equal((await fetch(`${base}/api/products`, { headers: { "x-api-key": badKey, "x-forwarded-for": "198.51.100.1" } })).status, 401);
    for (const base of [a, b]) t.equal((await fetch(`${base}/api/products`)).status, 200, "the last two anonymous requests of the window");
    for (const base of [a, b]) {
      const anonymous = await fetch(`${base}/api/products`, { headers: { "x-forwarded-for": "198.51.100.77", "x-real-ip": "198.51.100.78" } });
      t.equal(anonymous.status, 429, `${base}: the address is over its limit whatever the headers say`);
      t.match(await errorOf(anonymous), { reason: "ANONYMOUS" });
    }
  });

  await t.test("sign-in: per account, failures weighted, on every instance; other accounts unaffected", async (t) => {
    const attempt = (base: string, email: string, password: string): Promise<Response> =>
      fetch(`${base}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: base }, body: JSON.stringify({ email, password }) });
    t.equal((await attempt(a, "sales@demo.gerbang.dev", "wrong-password-1")).status, 401, "failure 1 (counts 3)");
    t.equal((await attempt(b, "SALES@demo.gerbang.dev", "wrong-password-2")).status, 401, "failure 2 on the other instance, account case-folded (6)");
    const locked = await attempt(a, "sales@demo.gerbang.dev", "demo-sales-password");
    t.equal(locked.status, 429, "the account is out of attempts, even with the right password");
    t.match(await errorOf(locked), { code: "RATE_LIMITED", reason: "SIGN_IN_ACCOUNT" });
    t.ok(Number(locked.headers.get("retry-after")) > 0);
    t.equal((await attempt(b, "sales@demo.gerbang.dev", "demo-sales-password")).status, 429, "on both instances");
    const bom = await fetch(`${a}/api/auth/sign-in/email`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: a },
      body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ email: "sales@demo.gerbang.dev", password: "demo-sales-password" }))]),
    });
    t.equal(bom.status, 429, "a byte-order mark does not move the attempt out of the account's bucket");
    const garbled = await fetch(`${a}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: a }, body: '{"email": "sales@demo.gerbang.dev", ' });
    t.equal(garbled.status, 400, "a body the gateway cannot read never reaches Better Auth uncounted");
    t.match(await errorOf(garbled), { code: "INVALID_JSON_BODY" });
    const other = await attempt(b, "admin@demo.gerbang.dev", "demo-admin-password");
    t.equal(other.status, 200, "another account from the same address signs in");
    t.equal(other.headers.get("ratelimit-limit"), "60", "the headers show the address bucket, never an account's counter");
  });

  await t.test("password reset and verification mail are limited per account", async (t) => {
    const post = (base: string, path: string, body: object): Promise<Response> =>
      fetch(`${base}/api/auth${path}`, { method: "POST", headers: { "content-type": "application/json", origin: base }, body: JSON.stringify(body) });
    const resets = [];
    for (const base of [a, b, a]) resets.push((await post(base, "/request-password-reset", { email: "user@demo.gerbang.dev", redirectTo: "/reset" })).status);
    t.same(resets, [200, 200, 429]);
    t.match(await errorOf(await post(b, "/request-password-reset", { email: "user@demo.gerbang.dev" })), { reason: "PASSWORD_RESET_ACCOUNT" });
    const mails = [];
    for (const base of [b, a, b]) mails.push((await post(base, "/send-verification-email", { email: "nobody@acme.example" })).status);
    t.equal(mails[2], 429, "the third verification mail to one address is refused");
    t.match(await errorOf(await post(a, "/send-verification-email", { email: "nobody@acme.example" })), { reason: "OTP_ACCOUNT" });
  });

  await t.test("Redis down: API traffic counts locally, auth buckets fail closed, both recover by themselves", async (t) => {
    const pro = await issue("partner-pro");
    const doomed = await cli("keys", "create", "--json", "--owner", "ops@acme.example", "--name", "doomed", "--tier", "partner-pro", "--scopes", "catalog:read");
    const doomedKey = doomed.stdout.trim().split("\n").at(-1) ?? "";
    const doomedId = (JSON.parse(doomed.stdout.trim().split("\n")[0] ?? "{}") as { id: string }).id;
    for (const base of [a, b]) {
      t.equal((await fetch(`${base}/api/products`, { headers: { "x-api-key": pro } })).status, 200);
      t.equal((await fetch(`${base}/api/products`, { headers: { "x-api-key": doomedKey } })).status, 200, "the key to revoke is cached on both");
    }
    await redis.stop();
    const signIn = await fetch(`${a}/api/auth/sign-in/email`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: a },
      body: JSON.stringify({ email: "buyer@demo.gerbang.dev", password: "demo-buyer-password" }),
    });
    t.equal(signIn.status, 503, "sign-in fails closed");
    t.match(await errorOf(signIn), { code: "DEPENDENCY_UNAVAILABLE", reason: "RATE_LIMIT_BACKEND" });
    for (let i = 0; i < 30; i++) {
      const response = await fetch(`${i % 2 === 0 ? a : b}/api/products`, { headers: { "x-api-key": pro } });
      if (response.status !== 200) t.fail(`request ${i} got ${response.status} while Redis was down`);
      await response.arrayBuffer();
    }
    t.pass("API traffic goes on with local counting");
    const ready = await fetch(`${a}/readyz`).catch((error: unknown) => {
      throw new Error(`readyz failed: ${String(error)}\n${env.gateways[0]?.output().slice(-3000) ?? ""}`);
    });
    t.equal(ready.status, 200, "degraded, not out of service");
    const body = (await ready.json()) as { status: string; checks: Record<string, string> };
    t.equal(body.status, "degraded");
    t.equal(body.checks.redis, "failing");
    t.equal(body.checks.rateLimit, "failing");
    t.ok(await eventually(() => /rate limit: Redis unreachable/.test(env.gateways[0]?.output() ?? "")), "the degradation is logged");
    // A revocation while Redis is down cannot be published; it must still win once Redis is back.
    const revoked = await cli("keys", "revoke", doomedId);
    t.equal(revoked.code, 0, revoked.stderr);
    t.match(revoked.stderr, /Redis unreachable/, "the CLI says the other instances learn it later");

    await redis.start();
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 15_000) {
      const response = await fetch(`${a}/api/auth/sign-in/email`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: a },
        body: JSON.stringify({ email: "buyer@demo.gerbang.dev", password: "demo-buyer-password" }),
      });
      status = response.status;
      await response.arrayBuffer();
      if (status === 200) break;
      await sleep(200);
    }
    t.equal(status, 200, `sign-in works again ${Date.now() - started} ms after Redis returned, without a restart`);
    for (const base of [a, b]) {
      let state = "";
      for (let i = 0; i < 50 && state !== "ready"; i++) {
        state = ((await (await fetch(`${base}/readyz`)).json()) as { status: string }).status;
        if (state !== "ready") await sleep(200);
      }
      t.equal(state, "ready", `${base}: ready again`);
    }
    t.ok(await eventually(() => /rate limit: Redis reachable again/.test(env.gateways[0]?.output() ?? "")), "the recovery is logged");
    // Reconnected subscribers clear their caches (messages may have been missed), so the revocation holds everywhere.
    for (const base of [a, b]) {
      let status = 200;
      for (let i = 0; i < 50 && status === 200; i++) {
        const response = await fetch(`${base}/api/products`, { headers: { "x-api-key": doomedKey } });
        status = response.status;
        await response.arrayBuffer();
        if (status === 200) await sleep(100);
      }
      t.equal(status, 401, `${base}: the key revoked during the outage is refused after Redis returned`);
    }
  });
});

t.test("behind a trusted proxy: the forwarded address counts, IPv6 per /64", { skip }, async (t) => {
  await awayFromWindowEdge(HOUR, 60_000);
  const env = await startGatewayEnv({ postgres: true, serverConfig: { trustProxy: ["127.0.0.1"] }, config: { rateLimit: { ...limits, anonymous: { max: 3, windowMs: HOUR } } } });
  t.teardown(() => env.close());
  const from = async (address: string): Promise<number> => {
    const response = await fetch(`${env.url}/api/products`, { headers: { "x-forwarded-for": address } });
    await response.arrayBuffer();
    return response.status;
  };
  t.same([await from("2001:db8:1:2::1"), await from("2001:db8:1:2:ffff::9"), await from("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), await from("2001:db8:1:2::7")], [200, 200, 200, 429], "one /64 is one bucket");
  t.equal(await from("2001:db8:1:3::1"), 200, "the next /64 is another");
  t.same([await from("198.51.100.7"), await from("::ffff:198.51.100.7"), await from("198.51.100.7"), await from("198.51.100.7")], [200, 200, 200, 429], "an IPv4-mapped IPv6 address is its IPv4 address");
  t.equal(await from("198.51.100.8"), 200, "IPv4 addresses are counted one by one");

  // Refused credentials: 3 per address (the anonymous limit); then that address gets no more lookups, valid or not.
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const withToken = (address: string, token: string): Promise<Response> => fetch(`${env.url}/api/products`, { headers: { "x-forwarded-for": address, authorization: `Bearer ${token}` } });
  const guesses = [];
  for (let i = 0; i < 4; i++) guesses.push((await withToken("203.0.113.50", `guess-${i}-${"x".repeat(24)}`)).status);
  t.same(guesses, [401, 401, 401, 429], "the fourth refused credential from one address is throttled");
  const blocked = await withToken("203.0.113.50", user.token);
  t.equal(blocked.status, 429, "while it lasts, even a valid credential from that address is not looked up");
  t.match(await errorOf(blocked), { code: "RATE_LIMITED", reason: "REFUSED_CREDENTIALS" });
  t.ok(Number(blocked.headers.get("retry-after")) > 0);
  t.equal((await withToken("203.0.113.51", user.token)).status, 200, "another address is unaffected");
});
