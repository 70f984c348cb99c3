import Type from "typebox";

/**
 * The whole configuration, one schema. Every field but `upstreams` has a default that runs the
 * example policy set on the embedded database. Each field's description is the README reference.
 */
const Upstream = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z][a-z0-9-]{0,62}$", description: "Name; also the audience of the identity assertion. e.g. marketplace" }),
    prefix: Type.String({ pattern: "^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$", description: "Path prefix this upstream owns, matched on segment boundaries. e.g. /api" }),
    url: Type.String({ pattern: "^https?://[^/?#]+/?$", description: "Origin of the upstream (no path). e.g. http://127.0.0.1:4000" }),
    timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 10000, description: "Time to wait for the upstream's response headers. e.g. 10000" }),
    circuitBreaker: Type.Object(
      {
        failureThreshold: Type.Integer({ minimum: 1, maximum: 10000, default: 5, description: "Consecutive failures (unreachable, reset, timeout, garbage) that open the circuit. e.g. 5" }),
        openMs: Type.Integer({ minimum: 100, maximum: 600000, default: 5000, description: "How long an open circuit answers 503 before one trial request is let through. e.g. 5000" }),
        maxOpenMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 60000, description: "Each failed trial doubles openMs, up to this. e.g. 60000" }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

const OnRedisDown = (fallback: "local" | "closed") =>
  Type.Union([Type.Literal("local"), Type.Literal("closed")], {
    default: fallback,
    description: "When Redis is unreachable: local counts in this instance alone (each instance then allows the limit); closed answers 503.",
  });

/** One rate-limit bucket: `max` requests per fixed window of `windowMs`. */
const LimitFields = (fallback: "local" | "closed", max?: number) => ({
  max: Type.Integer({ minimum: 1, ...(max === undefined ? {} : { default: max }), description: "Requests per window. e.g. 60" }),
  windowMs: Type.Integer({ minimum: 1000, maximum: 86400000, default: 60000, description: "Window length. e.g. 60000" }),
  onRedisDown: OnRedisDown(fallback),
});
/** Exported: Value.Default does not reach into Record values, so the loader applies it per tier. */
export const TierLimit = Type.Object(LimitFields("local"), { additionalProperties: false });

const Window = (max: number, windowMs: number) =>
  Type.Object(
    {
      max: Type.Integer({ minimum: 1, default: max }),
      windowMs: Type.Integer({ minimum: 1000, maximum: 86400000, default: windowMs }),
    },
    { additionalProperties: false, default: {} },
  );

/** A stricter bucket for credential and message-sending routes, counted per account and per client address. */
const AuthBucket = (d: { account: [number, number]; address: [number, number]; failureWeight: number }, routes: string) =>
  Type.Object(
    {
      perAccount: Window(...d.account),
      perAddress: Window(...d.address),
      failureWeight: Type.Integer({ minimum: 1, maximum: 100, default: d.failureWeight, description: "What a refused attempt (4xx answer) counts, against 1 for a success." }),
      onRedisDown: OnRedisDown("closed"),
    },
    { additionalProperties: false, default: {}, description: routes },
  );

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: "127.0.0.1", description: "Listen address. e.g. 0.0.0.0" }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: "Listen port (env PORT). e.g. 8080" }),
        publicUrl: Type.Optional(Type.String({ pattern: "^https?://", description: "The URL clients use; https makes cookies Secure. Default http://localhost:<port>" })),
        trustProxy: Type.Array(Type.String(), { default: [], description: "Addresses/CIDRs of proxies whose X-Forwarded-For is believed. e.g. [10.0.0.0/8]" }),
        bodyLimitBytes: Type.Integer({ minimum: 1, default: 1048576, description: "Largest request body accepted (413 above). e.g. 1048576" }),
        maxHeaderBytes: Type.Integer({ minimum: 1024, default: 16384, description: "Largest request header block accepted (431 above). e.g. 16384" }),
        maxHeaderCount: Type.Integer({ minimum: 16, maximum: 10000, default: 100, description: "Most header fields a request may carry (431 above). e.g. 100" }),
        shutdownGraceMs: Type.Integer({ minimum: 0, default: 10000, description: "How long SIGTERM waits for in-flight requests. e.g. 10000" }),
        headersTimeoutMs: Type.Integer({ minimum: 100, maximum: 600000, default: 10000, description: "A client must send its whole header block within this (slow clients get 408 and are closed). e.g. 10000" }),
        requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 60000, description: "A client must send its whole request, body included, within this (408 above). e.g. 60000" }),
        keepAliveTimeoutMs: Type.Integer({ minimum: 100, maximum: 600000, default: 5000, description: "An idle client connection is closed after this. e.g. 5000" }),
        maxConnections: Type.Integer({ minimum: 1, maximum: 1000000, default: 10000, description: "Open client connections at most; one more is answered 503 OVERLOADED and closed. e.g. 10000" }),
        removeResponseHeaders: Type.Array(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), {
          default: ["server", "x-powered-by"],
          description: "Upstream response headers the client never sees (case-insensitive), besides the hop-by-hop ones the gateway always removes; [] keeps them. e.g. [server, x-powered-by]",
        }),
        maxInFlightBodyBytes: Type.Integer({ minimum: 1, default: 67108864, description: "Request bytes the gateway buffers at once, over all requests (declared Content-Length; a chunked body counts as bodyLimitBytes); above: 503 OVERLOADED before the body is read. e.g. 67108864" }),
        overload: Type.Object(
          {
            maxEventLoopDelayMs: Type.Integer({ minimum: 0, default: 1000, description: "Event-loop delay above which requests are shed with 503 OVERLOADED (0: off). e.g. 1000" }),
            maxEventLoopUtilization: Type.Number({ minimum: 0, maximum: 1, default: 0, description: "Event-loop utilization (0..1) above which requests are shed (0: off). e.g. 0.98" }),
            maxHeapUsedBytes: Type.Integer({ minimum: 0, default: 0, description: "Heap use above which requests are shed (0: off). e.g. 1073741824" }),
            maxRssBytes: Type.Integer({ minimum: 0, default: 0, description: "Resident memory above which requests are shed (0: off). e.g. 2147483648" }),
            retryAfterSec: Type.Integer({ minimum: 1, maximum: 3600, default: 5, description: "Retry-After of a shed request. e.g. 5" }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    database: Type.Object(
      {
        url: Type.Optional(Type.String({ pattern: "^postgres(ql)?://", description: "PostgreSQL URL (env DATABASE_URL). Absent: embedded PGlite." })),
        embeddedDir: Type.String({ default: ".gerbang/pglite", description: "Data folder of the embedded database. e.g. .gerbang/pglite" }),
        poolMax: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: "PostgreSQL pool size. e.g. 10" }),
      },
      { additionalProperties: false, default: {} },
    ),
    redis: Type.Object(
      {
        url: Type.Optional(Type.String({ pattern: "^rediss?://", description: "Redis URL (env REDIS_URL): shared rate-limit counters and cache invalidation between instances. Absent: each instance alone." })),
        keyPrefix: Type.String({ pattern: "^[A-Za-z0-9:_.-]{1,64}$", default: "gerbang:", description: "Prefix of every Redis key and channel, so deployments can share one Redis. e.g. gerbang:" }),
        commandTimeoutMs: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: "A Redis command slower than this counts as Redis being down. e.g. 500" }),
      },
      { additionalProperties: false, default: {} },
    ),
    secret: Type.Optional(Type.String({ minLength: 32, description: "Secret for session signing (env GERBANG_SECRET), ≥ 32 chars. Absent: generated once into dataDir." })),
    dataDir: Type.String({ default: ".gerbang", description: "Folder for generated secrets and keys when not configured. e.g. .gerbang" }),
    auth: Type.Object(
      {
        trustedOrigins: Type.Array(Type.String({ pattern: "^https?://[^/]+$" }), { default: [], description: "Origins allowed to send cookie-authenticated writes, besides publicUrl." }),
        sessionExpiresInSec: Type.Integer({ minimum: 60, default: 604800, description: "Session lifetime; sliding. e.g. 604800 (7 days)" }),
        sessionUpdateAgeSec: Type.Integer({ minimum: 60, default: 86400, description: "Refresh a session's expiry when older than this. e.g. 86400" }),
        sessionCacheTtlMs: Type.Integer({ minimum: 0, maximum: 60000, default: 5000, description: "How long a verified session is reused in-process without asking the database; without the Redis invalidation channel, the revocation bound for other instances. 0 disables." }),
        staleIfErrorMs: Type.Integer({
          minimum: 0,
          maximum: 3600000,
          default: 300000,
          description: "While PostgreSQL is unreachable and the Redis invalidation channel is connected, a session or API key verified less than this long ago is still served from cache past its TTL (revocations keep arriving over Redis); a credential not seen before the outage gets 503. Without the channel, the TTLs alone apply. 0: off. e.g. 300000",
        }),
        requireEmailVerification: Type.Boolean({ default: true, description: "Refuse sign-in until the email is verified." }),
        uniformResponseMs: Type.Integer({
          minimum: 0,
          maximum: 10000,
          default: 250,
          description: "Sign-up, password-reset and verification-mail requests, and refused sign-ins, are answered no sooner than this after they arrive, so the answer time does not tell whether an account exists (0: off). e.g. 250",
        }),
        mail: Type.Object(
          {
            transport: Type.Union([Type.Literal("outbox"), Type.Literal("smtp"), Type.Literal("log")], {
              default: "outbox",
              description: "outbox: rows in mail_outbox (development, tests); smtp: send through smtpUrl; log: one line without the link.",
            }),
            smtpUrl: Type.Optional(Type.String({ pattern: "^smtps?://", description: "SMTP server (env SMTP_URL), e.g. smtps://user:pass@mail.example.com:465. Required for transport smtp." })),
            from: Type.String({ default: "Gerbang <no-reply@localhost>", description: "Sender address of SMTP mail." }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    policy: Type.Object(
      {
        dir: Type.String({ default: "policies", description: "Folder holding policy versions. e.g. policies" }),
        version: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description: "Active version (a folder name). Absent: the newest by manifest.created." })),
        caseInsensitivePaths: Type.Boolean({ default: false, description: "Match and forward paths lower-cased." }),
        reloadOnSignal: Type.Boolean({ default: true, description: "SIGHUP re-reads the policy folder and activates the configured (or newest) version if it is valid; an invalid one is refused and the running version keeps serving." }),
      },
      { additionalProperties: false, default: {} },
    ),
    identity: Type.Object(
      {
        algorithm: Type.Union([Type.Literal("EdDSA"), Type.Literal("ES256")], { default: "EdDSA", description: "Signature algorithm of x-gerbang-assertion." }),
        ttlSec: Type.Integer({ minimum: 5, maximum: 60, default: 60, description: "Assertion lifetime in seconds (≤ 60)." }),
        privateKeyFile: Type.Optional(Type.String({ description: "PKCS#8 PEM signing key. Absent: generated once into dataDir." })),
      },
      { additionalProperties: false, default: {} },
    ),
    resolver: Type.Object(
      {
        timeoutMs: Type.Integer({ minimum: 1, default: 2000, description: "Attribute lookup timeout. e.g. 2000" }),
        cacheTtlMs: Type.Integer({ minimum: 0, maximum: 60000, default: 2000, description: "How long resolved attributes are reused. e.g. 2000" }),
        cacheMaxEntries: Type.Integer({ minimum: 0, default: 10000, description: "Bound of the attribute cache. e.g. 10000" }),
      },
      { additionalProperties: false, default: {} },
    ),
    apiKeys: Type.Object(
      {
        cacheTtlMs: Type.Integer({ minimum: 0, maximum: 300000, default: 30000, description: "How long a verified key is reused without a database lookup. Revocation reaches every instance through Redis within a second; this bounds it when Redis is unreachable. e.g. 30000" }),
        negativeCacheTtlMs: Type.Integer({ minimum: 0, maximum: 300000, default: 10000, description: "How long an unknown key is remembered as unknown. e.g. 10000" }),
        cacheMaxEntries: Type.Integer({ minimum: 1, default: 100000, description: "Bound of each key cache (known and unknown). e.g. 100000" }),
        lastUsedFlushMs: Type.Integer({ minimum: 100, default: 10000, description: "Batch window of last-used writes. e.g. 10000" }),
        selfServiceTier: Type.String({ default: "partner-basic", description: "The tier of keys users issue for themselves over HTTP; only admins choose another. Must name a rateLimit tier." }),
        maxExpiresInDays: Type.Integer({ minimum: 1, default: 365, description: "Longest lifetime a new key may be given. e.g. 365" }),
      },
      { additionalProperties: false, default: {} },
    ),
    rateLimit: Type.Object(
      {
        tiers: Type.Record(Type.String({ pattern: "^[a-z][a-z0-9-]{0,62}$" }), TierLimit, {
          default: { "partner-basic": { max: 60, windowMs: 60000, onRedisDown: "local" }, "partner-pro": { max: 600, windowMs: 60000, onRedisDown: "local" } },
          description: "API key tiers by name; every key names one. Counted per key.",
        }),
        session: Type.Object(LimitFields("local", 300), { additionalProperties: false, default: {}, description: "Signed-in users (cookie or bearer), counted per user." }),
        anonymous: Type.Object(LimitFields("local", 60), { additionalProperties: false, default: {}, description: "Requests without credentials, counted per client address; refused credentials get a bucket of their own per address with these limits." }),
        auth: Type.Object(
          {
            signIn: AuthBucket({ account: [15, 900000], address: [60, 900000], failureWeight: 3 }, "POST /api/auth/sign-in/*"),
            passwordReset: AuthBucket({ account: [3, 3600000], address: [10, 3600000], failureWeight: 1 }, "POST /api/auth/request-password-reset, /forget-password*, /reset-password*"),
            otp: AuthBucket({ account: [5, 600000], address: [20, 3600000], failureWeight: 1 }, "POST /api/auth/sign-up/*, /send-verification-email and every OTP-sending route"),
          },
          { additionalProperties: false, default: {} },
        ),
        ipv6Prefix: Type.Integer({ minimum: 32, maximum: 128, default: 64, description: "IPv6 client addresses are counted per prefix of this length. e.g. 64" }),
      },
      { additionalProperties: false, default: {} },
    ),
    audit: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Write one audit_decision row per decision." }),
        flushIntervalMs: Type.Integer({ minimum: 10, default: 500, description: "Batch window of audit writes." }),
        maxBuffer: Type.Integer({ minimum: 1, default: 10000, description: "Rows kept while the database is unreachable; beyond, the oldest are dropped and counted." }),
      },
      { additionalProperties: false, default: {} },
    ),
    demo: Type.Object(
      {
        seedUsers: Type.Optional(Type.Boolean({ description: "Create the demo users (admin@, user@, buyer@, sales@demo.gerbang.dev; published passwords). Default: the value of demo.upstream." })),
        upstream: Type.Boolean({ default: false, description: "Start the demo marketplace upstream in-process (used when no upstreams are configured)." }),
      },
      { additionalProperties: false, default: {} },
    ),
    logLevel: Type.Union(
      [Type.Literal("fatal"), Type.Literal("error"), Type.Literal("warn"), Type.Literal("info"), Type.Literal("debug"), Type.Literal("trace"), Type.Literal("silent")],
      { default: "info", description: "Log level." },
    ),
    upstreams: Type.Optional(Type.Array(Upstream, { minItems: 1, description: "Upstreams by path prefix. Required unless demo.upstream." })),
  },
  { additionalProperties: false },
);

export type GerbangConfig = Type.Static<typeof ConfigSchema>;
export type UpstreamConfig = Type.Static<typeof Upstream>;
export type RateLimitConfig = GerbangConfig["rateLimit"];
export type AuthBucketName = keyof RateLimitConfig["auth"];
export type OnRedisDownMode = "local" | "closed";
