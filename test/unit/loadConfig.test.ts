import t from "tap";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, resolveConfig } from "../../src/config/loadConfig.ts";

const upstreams = [{ name: "marketplace", prefix: "/api", url: "http://127.0.0.1:4000" }];

t.test("a file holding only upstreams gets every default", async (t) => {
  const config = resolveConfig({ upstreams });
  t.equal(config.server.port, 8080);
  t.equal(config.auth.sessionExpiresInSec, 604800);
  t.equal(config.identity.ttlSec, 60);
  t.equal(config.upstreams?.[0]?.timeoutMs, 10000);
  t.equal(config.database.url, undefined, "no database url: embedded");
  t.equal(config.demo.upstream, false);
  t.same(config.upstreams?.[0]?.circuitBreaker, { failureThreshold: 5, openMs: 5000, maxOpenMs: 60000 }, "every upstream has a circuit breaker");
  t.match(config.server, { headersTimeoutMs: 10000, requestTimeoutMs: 60000, keepAliveTimeoutMs: 5000, maxConnections: 10000, maxInFlightBodyBytes: 67108864 });
  t.same(config.server.overload, { maxEventLoopDelayMs: 1000, maxEventLoopUtilization: 0, maxHeapUsedBytes: 0, maxRssBytes: 0, retryAfterSec: 5 });
  t.equal(config.policy.reloadOnSignal, true);
});

t.test("rate-limit defaults: API buckets fall back locally, auth buckets fail closed", async (t) => {
  const { rateLimit, redis } = resolveConfig({ upstreams });
  t.same(rateLimit.tiers["partner-basic"], { max: 60, windowMs: 60000, onRedisDown: "local" });
  t.same(rateLimit.tiers["partner-pro"], { max: 600, windowMs: 60000, onRedisDown: "local" });
  t.same(rateLimit.session, { max: 300, windowMs: 60000, onRedisDown: "local" });
  t.same(rateLimit.anonymous, { max: 60, windowMs: 60000, onRedisDown: "local" });
  t.same(rateLimit.auth.signIn, { perAccount: { max: 15, windowMs: 900000 }, perAddress: { max: 60, windowMs: 900000 }, failureWeight: 3, onRedisDown: "closed" });
  t.equal(rateLimit.auth.passwordReset.onRedisDown, "closed");
  t.equal(rateLimit.auth.otp.onRedisDown, "closed");
  t.equal(rateLimit.ipv6Prefix, 64);
  t.equal(redis.keyPrefix, "gerbang:");
  const custom = resolveConfig({ upstreams, rateLimit: { tiers: { gold: { max: 5 } }, anonymous: { max: 1, onRedisDown: "closed" } } });
  t.same(custom.rateLimit.tiers, { gold: { max: 5, windowMs: 60000, onRedisDown: "local" } }, "a tier gets its defaults");
  t.same(custom.rateLimit.anonymous, { max: 1, windowMs: 60000, onRedisDown: "closed" });
});

t.test("YAML anchors: defaults filled into one use do not leak into another", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "anchors.yaml");
  writeFileSync(file, "upstreams:\n  - { name: m, prefix: /api, url: 'http://127.0.0.1:4000' }\nrateLimit:\n  session: &w { max: 5 }\n  auth:\n    signIn: { perAccount: *w, perAddress: *w }\n");
  const config = loadConfig({ file, env: {} });
  t.same(config.rateLimit.session, { max: 5, windowMs: 60000, onRedisDown: "local" });
  t.same(config.rateLimit.auth.signIn.perAccount, { max: 5, windowMs: 900000 }, "its own window default, and no onRedisDown from the session bucket");
});

t.test("no file at all runs the demo", async (t) => {
  const config = loadConfig({ env: {} });
  t.equal(config.demo.upstream, true);
});

t.test("environment overrides the file", async (t) => {
  const config = resolveConfig({ upstreams, server: { port: 1 } }, { PORT: "9090", DATABASE_URL: "postgresql://u@h/db", REDIS_URL: "redis://h:6379", GERBANG_SECRET: "x".repeat(32) });
  t.equal(config.server.port, 9090);
  t.equal(config.database.url, "postgresql://u@h/db");
  t.equal(config.redis.url, "redis://h:6379");
  t.equal(config.secret, "x".repeat(32));
});

const invalid: Array<[string, unknown, NodeJS.ProcessEnv, RegExp]> = [
  ["port out of range", { upstreams, server: { port: 70000 } }, {}, /^config \/server\/port: /],
  ["PORT not a number", { upstreams }, { PORT: "eighty" }, /^config \/server\/port: /],
  ["unknown field", { upstreams, sever: {} }, {}, /unknown: sever/],
  ["upstream url with a path", { upstreams: [{ name: "m", prefix: "/api", url: "http://h/x" }] }, {}, /^config \/upstreams\/0\/url: /],
  ["upstream prefix not canonical", { upstreams: [{ name: "m", prefix: "/api/../x", url: "http://h" }] }, {}, /^config \/upstreams\/0\/prefix: /],
  ["duplicate upstream names", { upstreams: [upstreams[0], upstreams[0]] }, {}, /duplicate upstream name/],
  ["short secret", { upstreams, secret: "short" }, {}, /^config \/secret: /],
  ["assertion ttl above 60", { upstreams, identity: { ttlSec: 600 } }, {}, /^config \/identity\/ttlSec: /],
  ["no upstreams in a file", {}, {}, /^config \/upstreams: is required/],
  ["not a mapping", [1, 2], {}, /must be a mapping/],
  ["a tier without max", { upstreams, rateLimit: { tiers: { gold: { windowMs: 1000 } } } }, {}, /^config \/rateLimit\/tiers\/gold: /],
  ["an unknown Redis-down mode", { upstreams, rateLimit: { session: { max: 1, onRedisDown: "open" } } }, {}, /^config \/rateLimit\/session\/onRedisDown: /],
  ["a window below a second", { upstreams, rateLimit: { anonymous: { max: 1, windowMs: 10 } } }, {}, /^config \/rateLimit\/anonymous\/windowMs: /],
  ["an unknown auth bucket", { upstreams, rateLimit: { auth: { signUp: {} } } }, {}, /^config \/rateLimit\/auth: .*unknown: signUp/],
  ["a Redis key prefix with spaces", { upstreams, redis: { keyPrefix: "my app" } }, {}, /^config \/redis\/keyPrefix: /],
  ["a header timeout above the request timeout", { upstreams, server: { headersTimeoutMs: 20000, requestTimeoutMs: 10000 } }, {}, /^config \/server\/headersTimeoutMs: must not be above/],
  ["a circuit breaker that never opens", { upstreams: [{ ...upstreams[0], circuitBreaker: { failureThreshold: 0 } }] }, {}, /^config \/upstreams\/0\/circuitBreaker\/failureThreshold: /],
  ["an event-loop utilization above 1", { upstreams, server: { overload: { maxEventLoopUtilization: 2 } } }, {}, /^config \/server\/overload\/maxEventLoopUtilization: /],
  ["smtp without a server", { upstreams, auth: { mail: { transport: "smtp" } } }, {}, /^config \/auth\/mail\/smtpUrl: is required/],
  ["twilio without its settings", { upstreams, auth: { phone: { sms: { transport: "twilio" } } } }, { TWILIO_AUTH_TOKEN: "a-token-123" }, /^config \/auth\/phone\/sms\/twilio: is required/],
  ["twilio without a token", { upstreams, auth: { phone: { sms: { transport: "twilio", twilio: { accountSid: "AC12345678", from: "Gerbang" } } } } }, {}, /^config \/auth\/phone\/sms\/twilio\/authToken: is required/],
  ["a transaction pooler without a direct URL", { upstreams, database: { url: "postgresql://h/db", transactionPooler: true } }, {}, /^config \/database\/directUrl: is required with transactionPooler/],
  ["Sentinel and Cluster at once", { upstreams, redis: { sentinel: { addresses: ["s:26379"], masterName: "m" }, cluster: { nodes: ["n:7000"] } } }, {}, /^config \/redis\/cluster: cannot be set with redis.sentinel/],
  ["a Sentinel address without a port", { upstreams, redis: { sentinel: { addresses: ["sentinel-a"], masterName: "m" } } }, {}, /redis\/sentinel\/addresses\/0/],
  ["a direct URL without a URL", { upstreams, database: { directUrl: "postgresql://h/db" } }, {}, /^config \/database\/directUrl: is set, but database.url is not/],
  ["a phone default country that is not a code", { upstreams, auth: { phone: { defaultCountry: "Indonesia" } } }, {}, /^config \/auth\/phone\/defaultCountry: /],
];

t.test("the Twilio token comes from TWILIO_AUTH_TOKEN, and only for a configured Twilio", async (t) => {
  const twilio = { accountSid: "AC12345678", from: "Gerbang" };
  const config = resolveConfig({ upstreams, auth: { phone: { sms: { transport: "twilio", twilio } } } }, { TWILIO_AUTH_TOKEN: "a-token-123" });
  t.match(config.auth.phone.sms.twilio, { ...twilio, authToken: "a-token-123", baseUrl: "https://api.twilio.com" });
  const outbox = resolveConfig({ upstreams }, { TWILIO_AUTH_TOKEN: "a-token-123" });
  t.same([outbox.auth.phone.sms.transport, outbox.auth.phone.sms.twilio], ["outbox", undefined], "a token alone configures nothing");
});
for (const [name, raw, env, message] of invalid) {
  t.test(`refused: ${name}`, async (t) => {
    t.throws(() => resolveConfig(raw, env), { name: "ConfigError", message });
  });
}

t.test("file errors name the file", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadConfig({ file: join(dir, "missing.yaml"), env: {} }), ConfigError);
  writeFileSync(join(dir, "bad.yaml"), "upstreams: [\n");
  t.throws(() => loadConfig({ file: join(dir, "bad.yaml"), env: {} }), { message: /not valid YAML/ });
  writeFileSync(join(dir, "ok.yaml"), "upstreams:\n  - name: m\n    prefix: /api\n    url: http://127.0.0.1:4000\n");
  t.equal(loadConfig({ file: join(dir, "ok.yaml"), env: {} }).upstreams?.[0]?.name, "m");
});
