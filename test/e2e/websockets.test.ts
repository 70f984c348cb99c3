// WebSockets and event streams through the gateway (issue 19): the handshake is authenticated and
// authorized like a GET of its path (bearer, cookie with a trusted Origin, API key), forwarded with the
// identity headers and assertion, and relayed message by message to a real `ws` upstream; limits on
// connections, message size and idleness; and every revocation (sign-out, ban, role change, key
// revocation, a policy activation) closes the affected connections on both instances within a second
// (close code 1008), event streams included. Two gateway processes, PostgreSQL, Redis.
import t, { type Test } from "tap";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { WebSocket } from "ws";
import { startGatewayEnv, type SignedIn } from "../helpers/gatewayEnv.ts";
import { startWebsocketUpstream } from "../helpers/websocketUpstream.ts";
import { writeStricterVersion } from "../helpers/policyVersions.ts";
import { runGerbang } from "../helpers/processes.ts";
import { rawRequest } from "../helpers/rawHttp.ts";
import { eventually } from "../helpers/eventually.ts";
import pg from "pg";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));

interface Greeting {
  user: string | null;
  roles: string | null;
  auth: string | null;
  key: string | null;
  assertion: boolean;
  authorization: string | null;
  apiKey: string | null;
  cookie: string | null;
  protocol: string;
  requestId: string | null;
}
interface Closed {
  code: number;
  reason: string;
  at: number;
}
interface Opened {
  ws: WebSocket;
  greeting: Greeting;
  headers: IncomingHttpHeaders;
  closed: Promise<Closed>;
  next(): Promise<{ data: Buffer; binary: boolean }>;
}
interface Refused {
  status: number;
  body: { error?: { code?: string; reason?: string } } | null;
}

/** Opens a WebSocket through the gateway: the upstream's greeting once open, or the HTTP refusal. */
function connect(base: string, path: string, headers: Record<string, string> = {}, options: { protocols?: string[]; keepAlive?: boolean } = {}): Promise<Opened | Refused> {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}${path}`, options.protocols ?? [], { headers, perMessageDeflate: false });
  const queue: Array<{ data: Buffer; binary: boolean }> = [];
  const waiting: Array<(m: { data: Buffer; binary: boolean }) => void> = [];
  ws.on("message", (data: Buffer, binary: boolean) => {
    const taker = waiting.shift();
    if (taker === undefined) queue.push({ data, binary });
    else taker({ data, binary });
  });
  const next = (): Promise<{ data: Buffer; binary: boolean }> => {
    const ready = queue.shift();
    return ready === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(ready);
  };
  const closed = new Promise<Closed>((resolve) => ws.once("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString(), at: Date.now() })));
  return new Promise((resolve, reject) => {
    let upgradeHeaders: IncomingHttpHeaders = {};
    ws.once("upgrade", (response) => (upgradeHeaders = response.headers));
    ws.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (d: Buffer) => (body += d.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: body === "" ? null : (JSON.parse(body) as Refused["body"]) }));
    });
    ws.once("error", reject);
    ws.once("open", () => {
      // Pings keep a connection that must outlive the idle timeout open (they count as activity).
      if (options.keepAlive !== false) {
        const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 500);
        void closed.then(() => clearInterval(timer));
      }
      void next().then(({ data }) => resolve({ ws, greeting: JSON.parse(data.toString()) as Greeting, headers: upgradeHeaders, closed, next }));
    });
  });
}
const isOpen = (c: Opened | Refused): c is Opened => "ws" in c;
async function opened(t: Test, c: Promise<Opened | Refused>, what: string): Promise<Opened> {
  const result = await c;
  if (!isOpen(result)) {
    t.fail(`${what}: refused with ${result.status} ${JSON.stringify(result.body)}`);
    throw new Error(what);
  }
  t.pass(`${what}: open`);
  return result;
}
async function refused(c: Promise<Opened | Refused>): Promise<Refused> {
  const result = await c;
  if (isOpen(result)) {
    result.ws.terminate();
    return { status: 101, body: null };
  }
  return result;
}
/** Waits for a close, at most `ms` (then a code of 0). */
const closedWithin = (c: Opened, ms: number): Promise<Closed> => Promise.race([c.closed, new Promise<Closed>((r) => setTimeout(() => r({ code: 0, reason: "still open", at: Date.now() }), ms))]);

/** A server-sent event stream through the gateway: resolves once the first event arrived; `ended` says how it ended. */
function eventStream(base: string, path: string, headers: Record<string, string>): Promise<{ status: number; ended: Promise<"complete" | "cut"> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers, agent: false }, (res) => {
      let setEnded: (how: "complete" | "cut") => void = () => undefined;
      const ended = new Promise<"complete" | "cut">((r) => (setEnded = r));
      res.on("end", () => setEnded("complete"));
      res.on("aborted", () => setEnded("cut"));
      res.on("error", () => setEnded("cut"));
      res.once("data", () => resolve({ status: res.statusCode ?? 0, ended }));
      if (res.statusCode !== 200) resolve({ status: res.statusCode ?? 0, ended });
    });
    req.on("error", reject);
    req.end();
  });
}

const ACTIVE = "2026-12-01";
const NEXT = "2026-12-02";
const root = mkdtempSync(join(tmpdir(), "gerbang-websockets-"));
cpSync(fileURLToPath(new URL(`../../policies/${ACTIVE}`, import.meta.url)), join(root, ACTIVE), { recursive: true });

t.test("WebSockets through two gateways: authorized at the handshake, relayed, limited, closed on revocation", { skip }, async (t) => {
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const upstream = await startWebsocketUpstream();
  t.teardown(() => upstream.close());
  const env = await startGatewayEnv({
    postgres: true,
    instances: 2,
    extraUpstreams: ["inventory", "products"].map((name) => ({ name: `live-${name}`, prefix: `/api/${name}`, url: upstream.url, timeoutMs: 5000 })),
    config: {
      policy: { dir: root, activationCheckMs: 60_000 },
      redis: { url: testRedisUrl() },
      // A minute of session cache: a revocation that closes a connection at once did not wait for it.
      auth: { sessionCacheTtlMs: 60_000 },
      websocket: { maxPerPrincipal: 3, maxMessageBytes: 65536, idleTimeoutMs: 3000 },
    },
  });
  t.teardown(() => env.close());
  const [a, b] = env.urls as [string, string];
  const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  const bearer = (s: SignedIn): Record<string, string> => ({ authorization: `Bearer ${s.token}` });
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  /** The audit event of one request, once the writer has flushed it (audit.flushIntervalMs is 50 here). */
  const auditRow = async (requestId: string): Promise<Record<string, unknown> | undefined> => {
    let row: Record<string, unknown> | undefined;
    await eventually(async () => (row = (await db.query<Record<string, unknown>>("SELECT status, allowed, endpoint_id, principal_id, reason FROM audit_event WHERE request_id = $1", [requestId])).rows[0]) !== undefined, 5000);
    return row;
  };
  const signInSales = (): Promise<SignedIn> => env.signIn("sales@demo.gerbang.dev", "demo-sales-password");

  await t.test("the handshake is authorized like a GET and forwarded with the identity, never the credential", async (t) => {
    const anonymous = await refused(connect(a, "/api/inventory"));
    t.equal(anonymous.status, 401, "anonymous: 401 over HTTP, no upgrade");
    t.equal(anonymous.body?.error?.code, "UNAUTHENTICATED");
    const buyer = await env.signIn("buyer@demo.gerbang.dev", "demo-buyer-password");
    t.equal((await refused(connect(a, "/api/inventory", bearer(buyer)))).status, 403, "a buyer may not read inventory: 403");
    t.equal((await refused(connect(a, "/api/inventory", { authorization: "Bearer not-a-session" }))).status, 401, "a bad token: 401");
    t.equal((await refused(connect(a, "/api/nowhere", bearer(buyer)))).status, 403, "an unmapped path: refused, default deny");
    t.equal(upstream.handshakes.length, 0, "nothing refused reached the upstream");

    const sales = await signInSales();
    const c = await opened(t, connect(b, "/api/inventory?live=1", bearer(sales), { protocols: ["v1.stock", "v0.stock"] }), "sales with a bearer token");
    t.equal(c.greeting.user, sales.userId, "the upstream is told the user");
    t.equal(c.greeting.roles, "sales");
    t.equal(c.greeting.auth, "session");
    t.ok(c.greeting.assertion, "and gets the signed assertion");
    t.equal(c.greeting.authorization, null, "never the bearer token");
    t.equal(c.greeting.protocol, "v1.stock", "the upstream chose the subprotocol");
    t.equal(c.ws.protocol, "v1.stock", "and the client was told its choice");
    t.equal(c.headers["x-request-id"], c.greeting.requestId, "the 101 names the request id the upstream was given");
    t.equal(upstream.handshakes.at(-1)?.url, "/api/inventory?live=1", "the canonical path and query");
    const audited = await auditRow(String(c.headers["x-request-id"]));
    t.match(audited, { status: 101, allowed: true, endpoint_id: "inventory.list", principal_id: sales.userId }, "the handshake is audited at its 101");

    c.ws.send("hello");
    const text = await c.next();
    t.same([text.data.toString(), text.binary], ["hello", false], "text relayed as text");
    c.ws.send(Buffer.from([0, 1, 2, 255]));
    const binary = await c.next();
    t.same([[...binary.data], binary.binary], [[0, 1, 2, 255], true], "binary relayed as binary");
    c.ws.send("close:4001:bye now");
    const byUpstream = await c.closed;
    t.same([byUpstream.code, byUpstream.reason], [4001, "bye now"], "the upstream's close code and reason reach the client");

    const d = await opened(t, connect(a, "/api/inventory", bearer(sales)), "again on A");
    const before = upstream.closes.length;
    d.ws.close(4000, "client done");
    await d.closed;
    for (let i = 0; i < 50 && upstream.closes.length === before; i++) await new Promise((r) => setTimeout(r, 20));
    t.same(upstream.closes.at(-1), { code: 4000, reason: "client done" }, "the client's close code reaches the upstream");
  });

  await t.test("handshakes the gateway refuses before the upstream hears of them", async (t) => {
    const sales = await signInSales();
    const before = upstream.handshakes.length;
    const handshake = (target: string, extra = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13", method = "GET"): Promise<{ status: number; code?: string; reason?: string }> =>
      rawRequest(a, `${method} ${target} HTTP/1.1\r\nHost: gateway.example\r\nAuthorization: Bearer ${sales.token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n\r\n`).then((r) => {
        const body = r.body === "" ? {} : (JSON.parse(r.body) as { error?: { code?: string; reason?: string } });
        return { status: r.status, ...(body.error?.code === undefined ? {} : { code: body.error.code }), ...(body.error?.reason === undefined ? {} : { reason: body.error.reason }) };
      });
    t.same(await handshake("/api/inventory", ""), { status: 400, code: "MALFORMED_REQUEST", reason: "INVALID_WEBSOCKET_HANDSHAKE" }, "no Sec-WebSocket-Key");
    t.same(await handshake("/api/inventory", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8"), { status: 400, code: "MALFORMED_REQUEST", reason: "INVALID_WEBSOCKET_HANDSHAKE" }, "another version");
    t.same(await handshake("/healthz"), { status: 400, code: "MALFORMED_REQUEST", reason: "UNSUPPORTED_UPGRADE" }, "the gateway's own routes relay nothing");
    t.same(await handshake("/api/auth/get-session"), { status: 400, code: "MALFORMED_REQUEST", reason: "UNSUPPORTED_UPGRADE" }, "nor do the auth routes");
    t.equal((await handshake("/api/products/../inventory")).status, 400, "a target not in canonical form");
    t.equal((await handshake("/api/inventory", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Api-Key: gb_live_x")).code, "AMBIGUOUS_CREDENTIALS", "two credentials");
    // Not an upgrade at all on Node 24 (a POST): the policy judges a POST, and maps none here.
    t.equal((await handshake("/api/inventory", "Content-Length: 0", "POST")).status, 403, "Upgrade on a POST is an ordinary request");
    t.same(await handshake("/api/inventory", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\na=b&c"), { status: 400, code: "MALFORMED_REQUEST", reason: "INVALID_WEBSOCKET_HANDSHAKE" }, "a handshake with a body (it would hold body budget for its whole life)");
    t.same(await handshake("/api/inventory", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a,,b"), { status: 400, code: "MALFORMED_REQUEST", reason: "INVALID_WEBSOCKET_HANDSHAKE" }, "a malformed subprotocol list");
    t.equal(upstream.handshakes.length, before, "none reached the upstream");
    // No credential of the gateway's, but the browser's cookies (an upstream's own): still only from a trusted page.
    const anonymousWithCookies = await refused(connect(a, "/api/products", { cookie: "upstream_pref=dark" }));
    t.same([anonymousWithCookies.status, anonymousWithCookies.body?.error?.reason], [403, "ORIGIN_MISSING"], "any cookie on a handshake needs a trusted Origin");
    const fromTrusted = await opened(t, connect(a, "/api/products", { cookie: "upstream_pref=dark", origin: a }), "the same from the gateway's origin");
    fromTrusted.ws.close(1000);
    await fromTrusted.closed;
  });

  await t.test("a revocation during the handshake (the upstream slow to answer) ends it: never relayed", async (t) => {
    const sales = await signInSales();
    const started = Date.now();
    const attempt = connect(b, "/api/inventory?slow=1", bearer(sales)).then(
      (c) => (isOpen(c) ? (c.ws.terminate(), "open") : `refused ${c.status}`),
      () => "ended",
    );
    await new Promise((r) => setTimeout(r, 300));
    const out = await fetch(`${a}/api/auth/sign-out`, { method: "POST", headers: { ...bearer(sales), "content-type": "application/json", origin: a }, body: "{}" });
    t.equal(out.status, 200, "signed out on A while B waits for the upstream");
    t.equal(await attempt, "ended", "the handshake on B is ended, not completed");
    const ended = await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE status = 499 AND reason IS NOT NULL AND principal_id = $1", [sales.userId])).rowCount ?? 0) > 0, 5000);
    t.ok(ended, "and audited as 499 (allowed, ended before the upgrade)");
    // The gateway let its own connection to the upstream go: by the time the upstream would answer, nobody is there.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 1500 - Date.now())));
    t.notOk(upstream.handshakes.some((h) => h.url.includes("slow")), "the upstream never completed the handshake");
  });

  await t.test("a cookie-authenticated handshake needs a trusted Origin (cross-site WebSocket hijacking)", async (t) => {
    const sales = await signInSales();
    const none = await refused(connect(a, "/api/inventory", { cookie: sales.cookie }));
    t.same([none.status, none.body?.error?.code, none.body?.error?.reason], [403, "ORIGIN_NOT_TRUSTED", "ORIGIN_MISSING"], "no Origin: 403");
    const evil = await refused(connect(a, "/api/inventory", { cookie: sales.cookie, origin: "https://evil.example" }));
    t.same([evil.status, evil.body?.error?.reason], [403, "ORIGIN_UNTRUSTED"], "another site's Origin: 403");
    const c = await opened(t, connect(a, "/api/inventory", { cookie: sales.cookie, origin: a }), "the gateway's own origin");
    t.equal(c.greeting.user, sales.userId);
    c.ws.close(1000);
    await c.closed;
  });

  await t.test("an upstream that refuses the upgrade is a 502, not a half-open socket", async (t) => {
    const sales = await signInSales();
    const answer = await refused(connect(a, "/api/inventory?refuse=1", bearer(sales)));
    t.same([answer.status, answer.body?.error?.code, answer.body?.error?.reason], [502, "UPSTREAM_UNREACHABLE", "UPGRADE_REFUSED"]);
  });

  await t.test("limits: connections per principal (per instance), message size both ways, idle timeout", async (t) => {
    const sales = await signInSales();
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await opened(t, connect(a, "/api/inventory", bearer(sales)), `connection ${i + 1} of 3`));
    const fourth = await refused(connect(a, "/api/inventory", bearer(sales)));
    t.same([fourth.status, fourth.body?.error?.code, fourth.body?.error?.reason], [429, "CONNECTION_LIMIT", "PER_PRINCIPAL"], "the fourth on A: 429");
    const other = await opened(t, connect(b, "/api/inventory", bearer(sales)), "B counts its own");
    held[0]?.ws.close(1000);
    await held[0]?.closed;
    const again = await opened(t, connect(a, "/api/inventory", bearer(sales)), "a closed one frees its place");
    await Promise.all([...held.slice(1), other, again].map((c) => (c.ws.close(1000), c.closed)));

    const big = await opened(t, connect(a, "/api/inventory", bearer(sales)), "for a large message");
    big.ws.send("x".repeat(70000));
    t.equal((await big.closed).code, 1009, "a client message over websocket.maxMessageBytes: 1009");
    for (let i = 0; i < 50 && upstream.closes.at(-1)?.code !== 1009; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(upstream.closes.at(-1)?.code, 1009, "and the upstream is closed with 1009 too");
    const flood = await opened(t, connect(a, "/api/inventory", bearer(sales)), "for a large answer");
    flood.ws.send("big:70000");
    t.equal((await flood.closed).code, 1009, "an upstream message over the limit closes the client's side with 1009");

    const quiet = await opened(t, connect(a, "/api/inventory", bearer(sales), { keepAlive: false }), "a quiet connection");
    const idle = await closedWithin(quiet, 10_000);
    t.same([idle.code, idle.reason], [1001, "idle timeout"], "closed after websocket.idleTimeoutMs without a message");
  });

  /** Connections of one credential on both instances (and an event stream on B), and how soon each closed after `revoke`. */
  async function closedOnBoth(t: Test, headers: Record<string, string>, path: string, revoke: () => Promise<unknown>): Promise<void> {
    const onA = await opened(t, connect(a, path, headers), "open on A");
    const onB = await opened(t, connect(b, path, headers), "open on B");
    const stream = await eventStream(b, path, headers);
    t.equal(stream.status, 200, "an event stream on B");
    await revoke();
    const revokedAt = Date.now();
    const [closedA, closedB] = await Promise.all([closedWithin(onA, 5000), closedWithin(onB, 5000)]);
    for (const [name, closed] of [["A", closedA], ["B", closedB]] as const) {
      t.equal(closed.code, 1008, `closed on ${name} with 1008 (${closed.reason})`);
      t.ok(closed.at - revokedAt <= 1000, `on ${name} within a second of the revocation (${closed.at - revokedAt} ms)`);
    }
    const cut = await Promise.race([stream.ended, new Promise((r) => setTimeout(() => r("still open"), 5000))]);
    t.equal(cut, "cut", "the event stream on B is cut");
  }

  await t.test("sign-out on A closes the session's connections and streams on both instances", async (t) => {
    const sales = await signInSales();
    await closedOnBoth(t, bearer(sales), "/api/inventory", async () => {
      const out = await fetch(`${a}/api/auth/sign-out`, { method: "POST", headers: { ...bearer(sales), "content-type": "application/json", origin: a }, body: "{}" });
      t.equal(out.status, 200, "signed out");
    });
  });

  await t.test("revoking a user's other sessions closes theirs and keeps the caller's own open", async (t) => {
    const keep = await signInSales();
    const other = await signInSales();
    const kept = await opened(t, connect(b, "/api/inventory", bearer(keep)), "the caller's session on B");
    await closedOnBoth(t, bearer(other), "/api/inventory", async () => {
      const revoked = await fetch(`${a}/api/auth/revoke-other-sessions`, { method: "POST", headers: { ...bearer(keep), "content-type": "application/json", origin: a }, body: "{}" });
      t.equal(revoked.status, 200, "revoke-other-sessions on A");
    });
    t.equal((await closedWithin(kept, 500)).code, 0, "the caller's own connection stays open");
    kept.ws.close(1000);
    await kept.closed;
  });

  await t.test("a role change closes them (the upstream was told the old roles)", async (t) => {
    const sales = await signInSales();
    await closedOnBoth(t, bearer(sales), "/api/inventory", async () => t.equal((await cli("users", "set-role", "sales@demo.gerbang.dev", "user")).code, 0, "set-role"));
    t.equal((await cli("users", "set-role", "sales@demo.gerbang.dev", "sales")).code, 0, "role restored");
  });

  await t.test("a ban closes them", async (t) => {
    const sales = await signInSales();
    await closedOnBoth(t, bearer(sales), "/api/inventory", async () => t.equal((await cli("users", "ban", "sales@demo.gerbang.dev", "--reason", "test")).code, 0, "banned"));
    t.equal((await cli("users", "unban", "sales@demo.gerbang.dev")).code, 0, "unbanned");
  });

  await t.test("an API key's revocation closes its connections", async (t) => {
    t.equal((await cli("users", "create", "--email", "feed@acme.example", "--password", "acme-feed-password", "--role", "partner")).code, 0);
    const issued = await cli("keys", "create", "--json", "--owner", "feed@acme.example", "--name", "feed", "--tier", "partner-pro", "--scopes", "inventory:read");
    t.equal(issued.code, 0, issued.stderr);
    // The metadata as a JSON line, then the key alone on the last line.
    const lines = issued.stdout.trim().split("\n");
    const key = { id: (JSON.parse(lines[0] ?? "{}") as { id: string }).id, key: lines.at(-1) ?? "" };
    const c = await opened(t, connect(a, "/api/inventory", { "x-api-key": key.key }), "a partner key");
    t.same([c.greeting.auth, c.greeting.key, c.greeting.apiKey], ["api-key", key.id, null], "the upstream is told the key id, never the key");
    c.ws.close(1000);
    // The key stays valid, but its owner's role changes: what the upstream was told is stale.
    const owner = await opened(t, connect(b, "/api/inventory", { "x-api-key": key.key }), "the key on B");
    t.equal((await cli("users", "set-role", "feed@acme.example", "user")).code, 0, "the owner is demoted");
    const demoted = await closedWithin(owner, 5000);
    t.same([demoted.code, demoted.reason], [1008, "identity changed"], "closed: the key now acts with other roles");
    t.equal((await cli("users", "set-role", "feed@acme.example", "partner")).code, 0, "role restored");
    await closedOnBoth(t, { "x-api-key": key.key }, "/api/inventory", async () => t.equal((await cli("keys", "revoke", key.id)).code, 0, "revoked"));
  });

  await t.test("an activation that no longer allows the endpoint closes the connections it concerns", async (t) => {
    // Anonymous product reads are allowed by ACTIVE and taken away by NEXT.
    const sales = await signInSales();
    const stays = await opened(t, connect(a, "/api/inventory", bearer(sales)), "a sales connection, still allowed under NEXT");
    writeStricterVersion(root, ACTIVE, NEXT, { updateTest: true });
    await closedOnBoth(t, {}, "/api/products", async () => {
      const run = await cli("policy", "activate", NEXT, "--reason", "no anonymous product feeds");
      t.equal(run.code, 0, run.stderr);
    });
    t.equal((await closedWithin(stays, 500)).code, 0, "a connection the new version still allows stays open");
    stays.ws.close(1000);
    t.equal((await refused(connect(b, "/api/products"))).status, 401, "a new anonymous handshake is refused");
  });
});
