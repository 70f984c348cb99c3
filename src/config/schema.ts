import Type from "#typebox";

/**
 * The whole configuration, one schema. Every field but `upstreams` has a default that runs the
 * example policy set on the embedded database. Each field's description is the README reference.
 */
const FieldName = Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]{0,127}$" });
const PrismaSubject = Type.Object(
  {
    model: Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_]{0,127}$", description: "The Prisma model, e.g. `Order`." }),
    id: Type.Optional(Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description: "The model's `@id` or `@unique` field that the endpoint's `resource.id` path parameter holds (default `id`); a lookup is one query by it." })),
    attributes: Type.Array(FieldName, { minItems: 1, maxItems: 64, description: "The fields read as the subject's attributes; nothing else is selected." }),
  },
  { additionalProperties: false },
);
/** Exported for the docs generator: where an upstream's resources' attributes come from. */
export const PrismaResolverSchema = Type.Object(
  {
    databaseUrl: Type.String({ pattern: "^postgres(ql)?://", description: "PostgreSQL URL of the business database, as a **read-only** role ([Prisma resolver](policies.md#prisma-resolver)). Never logged.", typeText: "URL" }),
    client: Type.String({ default: "demo-marketplace", description: "The generated Prisma client (`prisma-client` generator, ESM) to read with: `demo-marketplace` for the demo marketplace's own (shipped), or the path of a module that exports `PrismaClient` (relative to the working directory)." }),
    requireReadOnly: Type.Boolean({ default: true, description: "Refuse to start when the role could write: a superuser, or any INSERT/UPDATE/DELETE/TRUNCATE privilege on a table of the database. Connections are read-only either way (`default_transaction_read_only`)." }),
    poolMax: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: "Connections to the business database, per instance." }),
    subjects: Type.Record(Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_]{0,63}$" }), PrismaSubject, { minProperties: 1, description: "Policy subject → `{ model, id, attributes }`. Subjects not named here use the HTTP resolver contract.", typeText: "map subject → `{ model, id, attributes }`" }),
  },
  { additionalProperties: false },
);

const Upstream = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z][a-z0-9-]{0,62}$", description: "Name. It is also the audience (`aud`) of the identity assertion." }),
    prefix: Type.String({ pattern: "^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$", description: "Path prefix this upstream owns, matched on segment boundaries (`/api` does not own `/apix`). Longest prefix wins, and `/` owns everything.", typeText: "path, e.g. `/api`" }),
    url: Type.String({ pattern: "^https?://[^/?#]+/?$", description: "Origin of the upstream (no path).", typeText: "`http(s)://host[:port]`" }),
    responseIdleTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400000, description: "The longest pause between two parts of this upstream's response body, instead of `timeoutMs` (long-lived answers: server-sent events, slow downloads). Responses stream to the client part by part as they arrive; a pause longer than this cuts the response (the client sees it end unfinished).", defaultText: "`timeoutMs`" })),
    bodyLimitBytes: Type.Optional(Type.Integer({ minimum: 1, description: "Largest request body this upstream's routes accept, instead of `server.bodyLimitBytes` (e.g. an upload service). Bodies stream (see `server.bodyLimitBytes`); `server.requestTimeoutMs` still bounds how long one may take.", defaultText: "`server.bodyLimitBytes`" })),
    timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 10000, description: "How long to wait for the upstream's response headers (`504` after that), and (unless `responseIdleTimeoutMs` says otherwise) the longest pause between two parts of its response body (the response is cut). Connecting has its own 10 s limit (undici's), after which the answer is `502`." }),
    circuitBreaker: Type.Object(
      {
        failureThreshold: Type.Integer({ minimum: 1, maximum: 10000, default: 5, description: "Consecutive transport failures (connection refused, a reset before the response headers, timeout, an answer that is not HTTP) that open this upstream's circuit. A response of any status, `5xx` included, is a success: the upstream answered (a reset after the headers too)." }),
        openMs: Type.Integer({ minimum: 100, maximum: 600000, default: 5000, description: "How long an open circuit answers `503 UPSTREAM_UNAVAILABLE` (reason `CIRCUIT_OPEN`, `Retry-After`) without contacting the upstream. Then one trial request is let through (the others meanwhile get the same `503` with `Retry-After: 1`): success closes the circuit, failure opens it again for twice as long. A trial that never reports is presumed lost after `timeoutMs` + 11 s, and another may start." }),
        maxOpenMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 60000, description: "The longest an open circuit waits between trials." }),
      },
      { additionalProperties: false, default: {} },
    ),
    resolver: Type.Optional(
      Type.Object(
        { prisma: PrismaResolverSchema },
        { additionalProperties: false, description: "Where the attributes of this upstream's resources (`resource: { from: resolver }`) come from: absent, the [HTTP resolver contract](policies.md#the-resolver-contract); `prisma`, the business database read directly." },
      ),
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
const AuthBucket = (d: { account: [number, number]; address: [number, number]; failureWeight: number }, doc: { description: string; defaultText: string; typeText: string }) =>
  Type.Object(
    {
      perAccount: Window(...d.account),
      perAddress: Window(...d.address),
      failureWeight: Type.Integer({ minimum: 1, maximum: 100, default: d.failureWeight, description: "What a refused attempt (4xx answer) counts, against 1 for a success." }),
      onRedisDown: OnRedisDown("closed"),
    },
    { additionalProperties: false, default: {}, ...doc },
  );

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: "127.0.0.1", description: "Listen address. Use `0.0.0.0` in containers." }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: "Listen port (env `PORT`)." }),
        publicUrl: Type.Optional(Type.String({ pattern: "^https?://", description: "The URL clients use. Its origin is trusted for cookie-authenticated writes, and `https` makes cookies `Secure`. When unset, `http://127.0.0.1:<port>` is trusted as well.", typeText: "`http(s)://` URL", defaultText: "`http://localhost:<port>`" })),
        trustProxy: Type.Array(Type.String(), { default: [], description: "Addresses/CIDRs of proxies whose `X-Forwarded-For` is believed. When empty, the socket address is the client IP." }),
        bodyLimitBytes: Type.Integer({ minimum: 1, default: 1048576, description: "Largest request body accepted (an upstream's own `bodyLimitBytes` replaces it for its routes). Larger bodies get `413`. A proxied body the policy does not read streams to the upstream as it arrives and is counted as it goes: crossing the limit aborts the upstream's request (it sees an unfinished body, never a complete truncated one) and answers `413` with the connection closed." }),
        bufferedBodyLimitBytes: Type.Integer({ minimum: 1, default: 1048576, description: "Largest body the gateway reads whole before deciding (at most `bodyLimitBytes`): a proxied body of an endpoint whose policy reads it (`resource: { from: body }`, `fields: body`) and a form body (checked for method overrides). Larger ones get `413` before anything is forwarded.", defaultText: "`1048576` (1 MiB)" }),
        maxHeaderBytes: Type.Integer({ minimum: 1024, default: 16384, description: "Largest request header block accepted. Larger blocks get `431`." }),
        maxHeaderCount: Type.Integer({ minimum: 16, maximum: 10000, default: 100, description: "Most header fields a request may carry (`431` reason `TOO_MANY_HEADERS` above; Apache's `LimitRequestFields` default). Node's own silent cap is lifted, so no field is ever dropped unseen." }),
        shutdownGraceMs: Type.Integer({ minimum: 0, default: 10000, description: "How long SIGTERM/SIGINT waits for in-flight requests before exiting with code 1." }),
        headersTimeoutMs: Type.Integer({ minimum: 100, maximum: 600000, default: 10000, description: "A client must send its whole header block within this, counted from its first byte (trickling does not extend it). Slower clients get `408 REQUEST_TIMEOUT` and are disconnected. Must not exceed `requestTimeoutMs`." }),
        requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 60000, description: "A client must send its whole request, body included, within this (`408` above). Checked every second." }),
        keepAliveTimeoutMs: Type.Integer({ minimum: 100, maximum: 600000, default: 5000, description: "An idle client connection is closed after this." }),
        maxConnections: Type.Integer({ minimum: 1, maximum: 1000000, default: 10000, description: "Open client connections at most. A connection beyond is answered `503 OVERLOADED` (reason `CONNECTIONS`, `Retry-After`) and closed; whatever it sends is never forwarded." }),
        removeResponseHeaders: Type.Array(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), {
          default: ["server", "x-powered-by"],
          description: "Upstream response fields the client never sees (case-insensitive), besides the hop-by-hop ones the gateway always removes. `[]` keeps them.", typeText: "header names", defaultText: "`[server, x-powered-by]`",
        }),
        maxInFlightBodyBytes: Type.Integer({ minimum: 1, default: 67108864, description: "Request body bytes the gateway buffers at once, over all requests. A body read whole reserves `min(Content-Length, limit)` (any `Transfer-Encoding`: the limit) right before it is read: for proxied routes after authentication and the policy precheck, for `/api/auth/*` before Better Auth sees it. A streamed body counts the bytes it holds: each part from its arrival until the upstream's connection took it (a 1 GiB upload holds tens of KiB at a time). If it does not fit: `503 OVERLOADED` (reason `BODY_BUDGET`, `Retry-After`, connection closed) without reading it. Released when the response ends or the connection closes.", defaultText: "`67108864` (64 MiB)" }),
        maxInFlightBodyBytesPerAddress: Type.Integer({ minimum: 1, default: 16777216, description: "The same budget for one client address (after `trustProxy`): one client cannot hold the whole of `maxInFlightBodyBytes`. Over it: `503 OVERLOADED` (reason `BODY_BUDGET_ADDRESS`).", defaultText: "`16777216` (16 MiB)" }),
        overload: Type.Object(
          {
            maxEventLoopDelayMs: Type.Integer({ minimum: 0, default: 1000, description: "Event-loop delay above which requests are shed with `503 OVERLOADED` (reason `EVENT_LOOP_DELAY`), through `@fastify/under-pressure`. `0` turns the check off." }),
            maxEventLoopUtilization: Type.Number({ minimum: 0, maximum: 1, default: 0, description: "Event-loop utilization above which requests are shed (reason `EVENT_LOOP_UTILIZATION`), e.g. `0.98`.", defaultText: "`0` (off)" }),
            maxHeapUsedBytes: Type.Integer({ minimum: 0, default: 0, description: "Heap use above which requests are shed (reason `HEAP`).", defaultText: "`0` (off)" }),
            maxRssBytes: Type.Integer({ minimum: 0, default: 0, description: "Resident memory above which requests are shed (reason `RSS`).", defaultText: "`0` (off)" }),
            retryAfterSec: Type.Integer({ minimum: 1, maximum: 3600, default: 5, description: "`Retry-After` of every `OVERLOADED` answer." }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    database: Type.Object(
      {
        url: Type.Optional(Type.String({ pattern: "^postgres(ql)?://", description: "PostgreSQL URL (env `DATABASE_URL`). When absent, the embedded PGlite database is used.", typeText: "`postgres(ql)://` URL" })),
        directUrl: Type.Optional(
          Type.String({
            pattern: "^postgres(ql)?://",
            description: "PostgreSQL itself, not through a transaction-mode pooler (env `DIRECT_DATABASE_URL`): migrations (at `serve` and `gerbang migrate`) run on it, since their lock is a session-level advisory lock that PgBouncer in transaction mode cannot keep. Required with `transactionPooler`; everything else (sign-in, keys, audit writes, activations) works through the pooler. See [PgBouncer](operations.md#pgbouncer).",
            typeText: "`postgres(ql)://` URL",
          }),
        ),
        transactionPooler: Type.Boolean({
          default: false,
          description: "`url` goes through PgBouncer (or another pooler) in transaction mode. The gateway then sends no session-level startup parameters (PgBouncer refuses them): the 30 s statement limit is enforced by the client alone, so also set it on the role (`ALTER ROLE … SET statement_timeout = '30s'`). Requires `directUrl` for migrations. Prepared statements are not used, so PgBouncer needs no `max_prepared_statements`.",
        }),
        embeddedDir: Type.String({ default: ".gerbang/pglite", description: "Data folder of the embedded database." }),
        poolMax: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: "PostgreSQL pool size." }),
      },
      { additionalProperties: false, default: {} },
    ),
    redis: Type.Object(
      {
        url: Type.Optional(Type.String({ pattern: "^rediss?://", description: "Redis URL (env `REDIS_URL`). Rate-limit counters are shared through it, and instances tell each other about revoked keys and changed users through its pub/sub channel `<keyPrefix>invalidate`. An unreachable Redis does not stop the gateway from starting; `/readyz` reports it as `degraded`. Without it, each instance counts and knows only its own.", typeText: "`redis(s)://` URL" })),
        sentinel: Type.Optional(
          Type.Object(
            {
              addresses: Type.Array(Type.String({ pattern: "^[^\\s:/]+:[0-9]{1,5}$" }), { minItems: 1, description: "The Sentinels to ask where the primary is (`host:port`). The gateway follows a failover by itself: it asks them again and reconnects to the new primary.", typeText: "`host:port`[]" }),
              masterName: Type.String({ minLength: 1, description: "The name the Sentinels monitor the primary under (`sentinel monitor <name> …`)." }),
            },
            { additionalProperties: false, description: "Redis Sentinel instead of one server: counters, invalidation and policy activation go to the primary the Sentinels name. `redis.url`, if also set, gives only the password, user and database (its host is not used)." },
          ),
        ),
        cluster: Type.Optional(
          Type.Object(
            {
              nodes: Type.Array(Type.String({ pattern: "^[^\\s:/]+:[0-9]{1,5}$" }), { minItems: 1, description: "Some of the cluster's nodes (`host:port`); the rest, and which node owns which slot, are learnt from them and followed through resharding and failovers.", typeText: "`host:port`[]" }),
            },
            { additionalProperties: false, description: "Redis Cluster instead of one server. Every counter is one key (its Lua script touches no other), so it lives in one slot; the invalidation channel is classic pub/sub, which the cluster carries to every node. `redis.url`, if also set, gives only the password, user and TLS. Not with `redis.sentinel`." },
          ),
        ),
        keyPrefix: Type.String({ pattern: "^[A-Za-z0-9:_.-]{1,64}$", default: "gerbang:", description: "Prefix of every Redis key (`<prefix>rl:…` counters) and of the invalidation channel, so deployments can share a Redis. The same on every instance of one deployment." }),
        commandTimeoutMs: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: "A Redis command slower than this counts as Redis being down (the [Redis-down modes](api-keys-and-rate-limits.md#rate-limits) apply)." }),
      },
      { additionalProperties: false, default: {} },
    ),
    secret: Type.Optional(Type.String({ minLength: 32, description: "Secret for session signing (env `GERBANG_SECRET`).", defaultText: "generated into `<dataDir>/secret`" })),
    dataDir: Type.String({ default: ".gerbang", description: "Folder for generated secrets and keys when they are not configured." }),
    auth: Type.Object(
      {
        trustedOrigins: Type.Array(Type.String({ pattern: "^https?://[^/]+$" }), { default: [], description: "Origins allowed to send cookie-authenticated writes, in addition to `publicUrl`.", typeText: "origin[]" }),
        sessionExpiresInSec: Type.Integer({ minimum: 60, default: 604800, description: "Session lifetime (sliding).", defaultText: "`604800` (7 days)" }),
        sessionUpdateAgeSec: Type.Integer({ minimum: 60, default: 86400, description: "A session's expiry is refreshed when the session is older than this." }),
        freshSignInSec: Type.Integer({ minimum: 1, maximum: 604800, default: 3600, description: "Sensitive actions need a sign-in at most this old: issuing or rotating an API key over HTTP (`403 FORBIDDEN`, reason `FRESH_SIGN_IN_REQUIRED`), and Better Auth's own (its `session.freshAge`: deleting the account, for one). Sliding refresh does not make a session fresh; signing in again does.", defaultText: "`3600` (1 hour)" }),
        sessionCacheTtlMs: Type.Integer({ minimum: 0, maximum: 60000, default: 5000, description: "How long a verified session is reused in-process without asking the database. Published revocations (sign-out, session revocation, password change, admin changes; see [Security model](security.md#security-model)) reach every instance at once; this bounds the others. `0` disables the cache." }),
        sessionCacheMaxEntries: Type.Integer({ minimum: 1, default: 50000, description: "Bound of the verified-session cache; when full, the oldest entry goes first." }),
        staleIfErrorMs: Type.Integer({
          minimum: 0,
          maximum: 3600000,
          default: 300000,
          description: "Stale-if-error bound for sessions and API keys alike: while PostgreSQL cannot be reached **and** the Redis invalidation channel is connected, a credential verified less than this long ago keeps its cached answer past `sessionCacheTtlMs` / `apiKeys.cacheTtlMs` (revocations still arrive over Redis). A credential not seen before the outage, sign-in, sign-up and writes get `503`. Without the channel the TTLs alone apply. `0` turns it off. See [Security model](security.md#security-model).", defaultText: "`300000` (5 min)",
        }),
        requireEmailVerification: Type.Boolean({ default: true, description: "Refuse sign-in until the email address is verified." }),
        erasureGraceDays: Type.Integer({
          minimum: 0,
          maximum: 3650,
          default: 30,
          description: "A deleted account (`gerbang users delete`, the admin API, `POST /api/account/delete`) is soft-deleted at once — sign-in refused, sessions ended, keys revoked everywhere — and its personal data purged this many days later (each instance checks hourly; `gerbang users purge` runs it now). Until then `gerbang users restore` undoes it. `0`: purged at the next check.",
          defaultText: "`30`",
        }),
        twoFactor: Type.Object(
          {
            requiredForRoles: Type.Array(Type.String({ minLength: 1 }), {
              default: ["admin"],
              description: "Roles exercised only by a session signed in with a second factor (TOTP or a backup code, Better Auth's two-factor plugin). Without one, these roles are withheld: the session acts with its other roles (at least `user`), a request only they would allow is refused `403 FORBIDDEN` with reason `SECOND_FACTOR_REQUIRED`, and Better Auth's `/api/auth/admin/*` routes are refused the same way when `admin` is withheld. API keys cannot present a second factor: these roles never act through a key. A remembered (trusted) device does not count as a second factor. `[]` turns the requirement off.",
              typeText: "role[]",
              defaultText: "`[\"admin\"]`",
            }),
            issuer: Type.String({ minLength: 1, maxLength: 64, default: "Gerbang", description: "The issuer authenticator apps show for the TOTP secret." }),
          },
          { additionalProperties: false, default: {} },
        ),
        uniformResponseMs: Type.Integer({
          minimum: 0,
          maximum: 10000,
          default: 250,
          description: "Sign-up, password-reset and verification-mail requests, and refused sign-ins, are answered no sooner than this after they arrive, so the answer time does not tell whether an account exists. Keep it above what those routes take under load. `0` turns it off.",
        }),
        mail: Type.Object(
          {
            transport: Type.Union([Type.Literal("outbox"), Type.Literal("smtp"), Type.Literal("log")], {
              default: "outbox",
              description: "`outbox`: mails become rows of `mail_outbox` (development, tests). `smtp`: sent through `auth.mail.smtpUrl` (nodemailer). `log`: one redacted log line.",
            }),
            smtpUrl: Type.Optional(Type.String({ pattern: "^smtps?://", description: "SMTP server (env `SMTP_URL`), e.g. `smtps://user:pass@mail.example.com:465`; `smtp://` uses STARTTLS when the server offers it. Required when `transport` is `smtp`.", typeText: "`smtp(s)://` URL" })),
            from: Type.String({ default: "Gerbang <no-reply@localhost>", description: "Sender address of SMTP mail." }),
          },
          { additionalProperties: false, default: {} },
        ),
        phone: Type.Object(
          {
            defaultCountry: Type.String({
              pattern: "^[A-Z]{2}$",
              default: "ID",
              description: "Phone numbers are normalised to E.164 (libphonenumber-js) before anything else sees them; a number written without `+` and country code is read as one of this country (ISO 3166 code), so `0812 3456 7890` is `+6281234567890`. A number that is not valid is `400 INVALID_PHONE_NUMBER` with the reason.",
              typeText: "ISO 3166-1 alpha-2 code",
            }),
            allowedCountries: Type.Array(Type.String({ pattern: "^(?:[A-Z]{2}|\\*)$" }), {
              minItems: 1,
              default: ["ID"],
              description: "Countries (ISO 3166 codes) whose numbers may sign in by phone; `[\"*\"]` any. Only mobile numbers are accepted (`FIXED_LINE_OR_MOBILE` too, where a country cannot tell). Another country's number is `400 INVALID_PHONE_NUMBER`, reason `COUNTRY_NOT_ALLOWED`; a premium-rate, toll-free or fixed line `NOT_MOBILE`: SMS pumping pays off on exactly those.",
              defaultText: "`[ID]`",
            }),
            maxSendsPerHour: Type.Integer({
              minimum: 1,
              maximum: 10_000_000,
              default: 1000,
              description: "Codes sent per clock hour by the whole deployment, to any number from any address (`429 RATE_LIMITED`, reason `OTP_GLOBAL`, once spent): the bound on what an attacker rotating numbers and addresses can cost. Counted across instances in Redis (per instance without `redis.url`); while a configured Redis is unreachable, sends are refused.",
              defaultText: "`1000`",
            }),
            resendCooldownSec: Type.Integer({
              minimum: 0,
              maximum: 3600,
              default: 60,
              description: "After a code was sent to a number, another is sent to it no sooner than this (`429 RATE_LIMITED`, reason `OTP_RESEND_COOLDOWN`, with `Retry-After`), on every instance; the `otp` rate-limit bucket counts sends per number and per address on top.",
              defaultText: "`60`",
            }),
            sms: Type.Object(
              {
                transport: Type.Union([Type.Literal("outbox"), Type.Literal("twilio"), Type.Literal("log")], {
                  default: "outbox",
                  description: "`outbox`: messages become rows of `sms_outbox` (development, tests; `gerbang outbox list`). `twilio`: sent through Twilio's Messages API. `log`: one log line without the code.",
                }),
                twilio: Type.Optional(
                  Type.Object(
                    {
                      accountSid: Type.String({ pattern: "^[A-Za-z0-9]{8,64}$", description: "The account SID." }),
                      authToken: Type.Optional(Type.String({ minLength: 8, description: "The auth token (env `TWILIO_AUTH_TOKEN`; keep it out of the file)." })),
                      from: Type.String({ minLength: 1, maxLength: 64, description: "Sender: an E.164 number or an alphanumeric sender id." }),
                      baseUrl: Type.String({ pattern: "^https?://", default: "https://api.twilio.com", description: "The API's origin (a test points it at a local fake)." }),
                      timeoutMs: Type.Integer({ minimum: 100, maximum: 60000, default: 10000, description: "A send that takes longer fails (the client gets `503`)." }),
                    },
                    { additionalProperties: false, description: "Required when `transport` is `twilio`." },
                  ),
                ),
              },
              { additionalProperties: false, default: {} },
            ),
          },
          {
            additionalProperties: false,
            default: {},
            description: "Sign-in and sign-up by phone with a one-time code (Better Auth's phone-number plugin): 6 digits, valid 5 minutes, stored as an HMAC, dead after 5 wrong attempts.",
          },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    policy: Type.Object(
      {
        dir: Type.String({ default: "policies", description: "Folder holding the policy versions. If `./policies` does not exist, the package's own folder is used." }),
        version: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description: "The active version (a folder name).", defaultText: "newest `manifest.created`" })),
        caseInsensitivePaths: Type.Boolean({ default: false, description: "Match and forward paths lower-cased." }),
        reloadOnSignal: Type.Boolean({ default: true, description: "`SIGHUP` makes `serve` re-read `policy.dir` and activate the configured (or newest) version if it is valid and its own tests pass; otherwise the running version keeps serving (see [Policy reload](operations.md#policy-reload)). With `false`, SIGHUP is logged and ignored (never Node's default of ending the process, not even while the gateway starts)." }),
        denialDetailsFor: Type.Array(Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_-]{0,63}$" }), { default: [], description: "Roles whose `403` answers carry `error.details`: the endpoint id, the deciding rule id, the blocked fields and the version, for debugging a policy (e.g. `[admin]`). Empty by default: the details tell a caller which rule to work around, so ordinary callers never get them. Audit rows always record them; `gerbang policy explain` shows the whole reasoning.", typeText: "role names" }),
        activationCheckMs: Type.Integer({ minimum: 100, maximum: 600000, default: 5000, description: "How often each instance compares the version it serves with the one recorded as active (`gerbang policy activate`). Activations normally arrive over Redis within a second; this is the bound when a message was missed or Redis is down." }),
        abilityCacheMaxEntries: Type.Integer({ minimum: 1, default: 1024, description: "Bound of the compiled abilities of the active version (one per distinct role set and per key scope set); when full, it is emptied and abilities are compiled again as requests need them." }),
      },
      { additionalProperties: false, default: {} },
    ),
    admin: Type.Object(
      {
        prefix: Type.String({ pattern: "^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$", default: "/admin", description: "The gateway's own prefix: the admin API (`<prefix>/api/policy/…`) and the playground (`<prefix>/playground`). Requests under it are answered by the gateway, never forwarded (an upstream owning `/` does not get them). Each route is an endpoint the active policy version must map and allow: the shipped versions map `/admin/**` to the subject `GatewayPolicy` for admins only.", typeText: "path" }),
      },
      { additionalProperties: false, default: {} },
    ),
    identity: Type.Object(
      {
        algorithm: Type.Union([Type.Literal("EdDSA"), Type.Literal("ES256")], { default: "EdDSA", description: "Signature algorithm of `x-gerbang-assertion`." }),
        ttlSec: Type.Integer({ minimum: 5, maximum: 60, default: 60, description: "Assertion lifetime in seconds." }),
        cacheMaxEntries: Type.Integer({ minimum: 1, default: 50000, description: "Bound of the signed-assertion cache (one entry per principal, policy version and upstream; an assertion is reused for three quarters of its lifetime); when full, it is emptied." }),
        privateKeyFile: Type.Optional(Type.String({ description: "PKCS#8 PEM signing key. A configured file that is missing is an error.", defaultText: "generated into `<dataDir>/identity-<alg>.pem`" })),
      },
      { additionalProperties: false, default: {} },
    ),
    resolver: Type.Object(
      {
        timeoutMs: Type.Integer({ minimum: 1, default: 2000, description: "Timeout of an attribute lookup." }),
        cacheTtlMs: Type.Integer({ minimum: 0, maximum: 60000, default: 2000, description: "How long resolved attributes are reused, for reads only." }),
        cacheMaxEntries: Type.Integer({ minimum: 0, default: 10000, description: "Bound of the attribute cache." }),
      },
      { additionalProperties: false, default: {} },
    ),
    apiKeys: Type.Object(
      {
        cacheTtlMs: Type.Integer({ minimum: 0, maximum: 300000, default: 30000, description: "How long a verified API key is reused without a database lookup. Revocations reach every instance through Redis within a second; this bounds a revocation missed while Redis was unreachable." }),
        negativeCacheTtlMs: Type.Integer({ minimum: 0, maximum: 300000, default: 10000, description: "How long an unknown (well-formed) key is remembered as unknown." }),
        cacheMaxEntries: Type.Integer({ minimum: 1, default: 100000, description: "Bound of each key cache." }),
        lastUsedFlushMs: Type.Integer({ minimum: 100, default: 10000, description: "Batch window of last-used writes (one statement per batch)." }),
        selfServiceTier: Type.String({ default: "partner-basic", description: "The tier of keys users issue for themselves over HTTP; only admins choose another. Must name a `rateLimit.tiers` entry." }),
        maxExpiresInDays: Type.Integer({ minimum: 1, default: 365, description: "Longest lifetime of a new key, and the lifetime of one issued without `expiresIn`." }),
      },
      { additionalProperties: false, default: {} },
    ),
    rateLimit: Type.Object(
      {
        tiers: Type.Record(Type.String({ pattern: "^[a-z][a-z0-9-]{0,62}$" }), TierLimit, {
          default: { "partner-basic": { max: 60, windowMs: 60000, onRedisDown: "local" }, "partner-pro": { max: 600, windowMs: 60000, onRedisDown: "local" } },
          description: "API key tiers; every key names one and is counted per key. `windowMs` defaults to `60000`, `onRedisDown` to `local`. A key whose tier was removed from the configuration gets the `anonymous` limits.", typeText: "map name → `{ max, windowMs, onRedisDown }`", defaultText: "`partner-basic: {max: 60}`, `partner-pro: {max: 600}`",
        }),
        session: Type.Object(LimitFields("local", 300), { additionalProperties: false, default: {}, description: "Signed-in users (cookie or bearer), counted per user across all their sessions.", typeText: "`{ max, windowMs, onRedisDown }`", defaultText: "`{max: 300, windowMs: 60000, onRedisDown: local}`" }),
        anonymous: Type.Object(LimitFields("local", 60), { additionalProperties: false, default: {}, description: "Requests without credentials, counted per [client address](api-keys-and-rate-limits.md#rate-limits). Requests whose credentials were refused (`401`) get a bucket of their own per address with the same limits.", typeText: "`{ max, windowMs, onRedisDown }`", defaultText: "`{max: 60, windowMs: 60000, onRedisDown: local}`" }),
        auth: Type.Object(
          {
            signIn: AuthBucket({ account: [15, 900000], address: [60, 900000], failureWeight: 3 }, { description: "`POST /api/auth/sign-in/*` and OTP/2FA verification. Each attempt counts 1 against the account (email, phone number or username of the body) and against the address; a refused attempt (any `4xx` answer) counts `failureWeight` in all.", typeText: "`{ perAccount, perAddress, failureWeight, onRedisDown }`", defaultText: "per account `{max: 15, windowMs: 900000}`, per address `{max: 60, windowMs: 900000}`, `failureWeight: 3`, `onRedisDown: closed`" }),
            passwordReset: AuthBucket({ account: [3, 3600000], address: [10, 3600000], failureWeight: 1 }, { description: "`POST /api/auth/request-password-reset`, `/forget-password*`, `/reset-password*` (also the phone-number and email-OTP variants).", typeText: "`{ perAccount, perAddress, failureWeight, onRedisDown }`", defaultText: "per account `{max: 3, windowMs: 3600000}`, per address `{max: 10, windowMs: 3600000}`, `failureWeight: 1`, `onRedisDown: closed`" }),
            otp: AuthBucket({ account: [5, 600000], address: [20, 3600000], failureWeight: 1 }, { description: "Routes that send a message: `POST /api/auth/sign-up/*`, `/send-verification-email`, `/sign-in/magic-link`, `/phone-number/send-otp`, `/email-otp/send-verification-otp`.", typeText: "`{ perAccount, perAddress, failureWeight, onRedisDown }`", defaultText: "per account `{max: 5, windowMs: 600000}`, per address `{max: 20, windowMs: 3600000}`, `failureWeight: 1`, `onRedisDown: closed`" }),
          },
          { additionalProperties: false, default: {} },
        ),
        ipv6Prefix: Type.Integer({ minimum: 32, maximum: 128, default: 64, description: "IPv6 client addresses are counted per prefix of this length." }),
        maxWindows: Type.Integer({ minimum: 1, default: 100000, description: "Bound of the rate-limit windows (one per bucket and window) this instance keeps in memory between Redis round trips; when full, ended windows go first, then the oldest." }),
      },
      { additionalProperties: false, default: {} },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Serve Prometheus metrics at `GET /metrics`: to loopback callers without credentials, to anyone else only as the active policy allows (the shipped versions: admins; endpoint `gateway.metrics`)." }),
        port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: "Also serve `/metrics` on this port of `metrics.host`, without credentials (for a scraper on a private network). Behind a reverse proxy on the same host, use this rather than the gateway port: proxied requests would look like loopback.", defaultText: "none" })),
        host: Type.String({ default: "127.0.0.1", description: "Address of `metrics.port`." }),
      },
      { additionalProperties: false, default: {} },
    ),
    websocket: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Relay `Upgrade: websocket` requests (a `GET` the policy authorizes like any other, the `Origin` of a cookie-authenticated handshake checked against the trusted origins) to the upstream owning the path. Off: an upgrade is refused (`400`, reason `UNSUPPORTED_UPGRADE`)." }),
        maxMessageBytes: Type.Integer({ minimum: 1, maximum: 1073741824, default: 1048576, description: "The largest message either side may send through the gateway; a larger one closes the connection with `1009` on both sides." }),
        idleTimeoutMs: Type.Integer({ minimum: 1000, maximum: 86400000, default: 120000, description: "A connection with no message (or ping) either way for this long is closed with `1001` on both sides." }),
        maxPerPrincipal: Type.Integer({ minimum: 1, default: 16, description: "Open WebSocket connections one user or API key may hold on this instance; the next handshake is refused (`429 CONNECTION_LIMIT`, reason `PER_PRINCIPAL`)." }),
        maxPerAddress: Type.Integer({ minimum: 1, default: 64, description: "Open WebSocket connections from one client address on this instance (reason `PER_ADDRESS`)." }),
        recheckIntervalMs: Type.Integer({ minimum: 1000, maximum: 86400000, default: 60000, description: "How often every open WebSocket and streaming response is authorized again (a session or key that expired meanwhile). Revocations, bans, role changes and policy activations are acted on at once, not on this clock." }),
      },
      { additionalProperties: false, default: {} },
    ),
    tracing: Type.Object(
      {
        trustIncomingFrom: Type.Array(Type.String(), { default: [], description: "Addresses or CIDRs of callers (the direct peer, never `X-Forwarded-For`) whose W3C `traceparent` and `tracestate` are continued. Every other request starts a trace of its own, and a client's trace headers never reach the upstream. The upstream receives `traceparent` naming the gateway's span; the audit event records the trace id.", typeText: "address or CIDR[]" }),
        otlpUrl: Type.Optional(Type.String({ pattern: "^https?://", description: "OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`): one server span per request is exported there with the OpenTelemetry SDK, carrying the endpoint id, decision, reason and status. Absent: spans go to `@opentelemetry/api`'s global tracer, a no-op unless an SDK was registered (`node --import`).", defaultText: "none" })),
        serviceName: Type.String({ default: "gerbang", description: "`service.name` of the exported spans." }),
      },
      { additionalProperties: false, default: {} },
    ),
    audit: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Write the audit trail (`audit_event`): routed decisions, sign-ins and account changes, key and policy changes; hash-chained per instance ([Audit trail](audit.md))." }),
        flushIntervalMs: Type.Integer({ minimum: 10, default: 500, description: "Batch window of audit writes." }),
        maxBuffer: Type.Integer({ minimum: 1, default: 10000, description: "Events kept in memory while the database is unreachable. When it is full, sampled allows and rate-limit refusals are shed first (`gerbang_audit_shed_total`); then new security events are lost, counted (`gerbang_audit_lost_total`) and logged." }),
        checkpointIntervalMs: Type.Integer({ minimum: 1000, default: 60000, description: "How often each instance signs its chain head into `audit_checkpoint` (also when it stops): rows deleted from the tail up to the last checkpoint are detected by `gerbang audit verify`." }),
        sampleAllowed: Type.Number({ minimum: 0, maximum: 1, default: 1, description: "Share of allowed routed requests audited (denials are always audited)." }),
        sampleAllowedByEndpoint: Type.Record(Type.String(), Type.Number({ minimum: 0, maximum: 1 }), { default: {}, description: "`sampleAllowed` for particular endpoint ids, e.g. `{ catalogue.list: 0.01 }`.", typeText: "endpoint id → share" }),
        sampleRateLimited: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: "Share of rate-limit refusals audited (all are counted in `gerbang_rate_limited_total`)." }),
        viewAllRoles: Type.Array(Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_-]{0,63}$" }), { default: ["admin"], description: "Roles that see every event at `GET /api/audit/events`; every other signed-in user sees only the events they acted in (their sign-ins, their key changes).", typeText: "role names" }),
        retentionDays: Type.Optional(Type.Integer({ minimum: 1, description: "Delete events older than this many days, keeping the chains verifiable (a signed retention checkpoint replaces what was cut). Absent: keep everything.", defaultText: "none" })),
      },
      { additionalProperties: false, default: {} },
    ),
    demo: Type.Object(
      {
        seedUsers: Type.Optional(Type.Boolean({ description: "Create the demo users (admin@, user@, buyer@, sales@demo.gerbang.dev), whose passwords are published.", defaultText: "the value of `demo.upstream`" })),
        upstream: Type.Boolean({ default: false, description: "Start the demo marketplace in-process at `/api`.", defaultText: "`false` (forced on by `serve` without `--config`)" }),
      },
      { additionalProperties: false, default: {} },
    ),
    logLevel: Type.Union(
      [Type.Literal("fatal"), Type.Literal("error"), Type.Literal("warn"), Type.Literal("info"), Type.Literal("debug"), Type.Literal("trace"), Type.Literal("silent")],
      { default: "info", description: "Log level (JSON lines on stdout, pino). At `trace`, each request also logs its request and response headers (`\"msg\":\"headers\"`), with `logRedactHeaders` redacted." },
    ),
    logFlushMs: Type.Integer({ minimum: 0, maximum: 10000, default: 100, description: "Log lines are buffered and written to stdout every this many milliseconds (or every 8 KB), and on exit or a crash; `0` writes each line as it is made (a write per line costs a busy gateway about a tenth of its CPU)." }),
    logRedactHeaders: Type.Array(Type.String({ pattern: "^[a-z0-9!#$%&'*+.^_`|~-]+$" }), { default: [], description: "Header names (lower case) written as `[redacted]` wherever a log line carries headers, besides `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`, `set-auth-token` (Better Auth's bearer token) and `x-gerbang-assertion`, which always are.", typeText: "header name[]" }),
    upstreams: Type.Optional(Type.Array(Upstream, { minItems: 1, description: "Upstreams by path prefix. Required unless `demo.upstream`. Names must be unique." })),
  },
  { additionalProperties: false },
);

export type GerbangConfig = Type.Static<typeof ConfigSchema>;
export type UpstreamConfig = Type.Static<typeof Upstream>;
export type RateLimitConfig = GerbangConfig["rateLimit"];
export type AuthBucketName = keyof RateLimitConfig["auth"];
export type OnRedisDownMode = "local" | "closed";
