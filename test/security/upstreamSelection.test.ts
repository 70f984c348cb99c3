// Bypass regression suite, routing and host confusion / SSRF through the gateway (issue 4): raw
// requests over a socket to a real gateway process in front of the demo upstream, which records
// exactly what it received. Each case names the class and the public advisory it models. The
// upstream is chosen by configuration alone: whatever the client puts in Host, the target, the
// path or forwarding headers, the gateway connects to the configured upstream only (and sends it
// the configured Host), and a second TCP server the test owns, whose address every case tries to
// smuggle in, never sees a connection.
import t, { type Test } from "tap";
import { createServer, type Server } from "node:net";
import pg from "pg";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv } from "../helpers/gatewayEnv.ts";
import { catalogueError } from "../helpers/catalogueError.ts";
import { rawRequest, type RawResponse } from "../helpers/rawHttp.ts";

const pgMissing = await serviceGate("postgres");

/** The address an attacker would like the gateway to connect to: it records every connection it gets. */
interface Bystander {
  port: number;
  address: string;
  connections: Array<{ from: string; data: string }>;
  close(): Promise<void>;
}
async function startBystander(): Promise<Bystander> {
  const connections: Bystander["connections"] = [];
  const server: Server = createServer((socket) => {
    const entry = { from: `${socket.remoteAddress ?? ""}:${socket.remotePort ?? 0}`, data: "" };
    connections.push(entry);
    socket.on("data", (chunk: Buffer) => (entry.data += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    // Answer like an HTTP server would, so a connection that did happen cannot hang the test.
    socket.end("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\nconnection: close\r\n\r\n{\"bystander\":true}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { port, address: `127.0.0.1:${port}`, connections, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const bystander = await startBystander();
t.teardown(() => bystander.close());
const env: GatewayEnv = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
t.comment(`database: ${pgMissing === false ? "PostgreSQL" : `embedded (${pgMissing})`}`);
const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const EVIL = bystander.address;
/** What the upstream must receive as Host: the authority of `upstreams[].url` (undici sets it from the configured URL). */
const UPSTREAM_HOST = new URL(env.upstreamUrl).host;

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
}
/** Everything the upstream received since the last clear, resolver lookups and paths outside /api included. */
async function upstreamLog(): Promise<Seen[]> {
  return (await (await fetch(`${env.upstreamUrl}/__demo/received`)).json()) as Seen[];
}
const request = (line: string, headers: string[] = ["Host: gateway.example"], body = ""): string =>
  `${line}\r\n${[...headers, "Connection: close", ...(body === "" ? [] : [`Content-Length: ${Buffer.byteLength(body)}`])].join("\r\n")}\r\n\r\n${body}`;

interface Expect {
  status: number;
  /** The gateway's catalogue code; absent when the upstream answered. */
  code?: string;
  reason?: string;
  /** What the configured upstream must receive, in order (`METHOD target`); absent: nothing. */
  upstream?: string[];
}

/** Sends raw bytes; checks the answer, that the configured upstream got exactly `upstream` with its configured Host, and that the bystander got nothing. */
async function check(tt: Test, label: string, bytes: string, expected: Expect): Promise<RawResponse> {
  await env.clearReceived();
  const before = bystander.connections.length;
  const response = await rawRequest(env.url, bytes);
  tt.equal(response.status, expected.status, `${label}: ${expected.status}`);
  const error = catalogueError(response.body);
  if (expected.code === undefined) tt.equal(error, undefined, `${label}: not a gateway catalogue error (${error?.code ?? "none"})`);
  else tt.same(error, { code: expected.code, reason: expected.reason }, `${label}: ${expected.code}${expected.reason === undefined ? "" : ` ${expected.reason}`}`);
  tt.notMatch(response.body, /bystander/, `${label}: nothing of the bystander's answer came back`);
  const seen = await upstreamLog();
  tt.same(seen.map((r) => `${r.method} ${r.url}`), expected.upstream ?? [], `${label}: the configured upstream received ${expected.upstream === undefined ? "nothing" : expected.upstream.join(", ")}`);
  for (const r of seen) tt.equal(r.headers.host, UPSTREAM_HOST, `${label}: Host upstream is the configured ${UPSTREAM_HOST}`);
  tt.same(bystander.connections.slice(before), [], `${label}: no connection to ${EVIL}`);
  return response;
}
const get = (target: string, headers?: string[]): string => request(`GET ${target} HTTP/1.1`, headers);
const PRODUCTS: Expect = { status: 200, upstream: ["GET /api/products"] };

t.test("Host header values never choose the upstream or the Host it receives", async (t) => {
  // Class: Host header injection into a proxy that builds the upstream URL from the client's Host
  // (Nginx `proxy_pass http://$host`, Spring Cloud Gateway routes on Host predicates), and Host
  // header poisoning (Django CVE-2012-4520, Rails Host Authorization CVE-2021-22881). The gateway never
  // reads Host; undici sends the configured upstream's authority.
  const hosts: Array<[string, string]> = [
    ["another host", "evil.example"],
    ["another host with a port", "evil.example:8443"],
    ["the bystander's address", EVIL],
    ["localhost with the bystander's port", `localhost:${bystander.port}`],
    ["an IPv6 literal", `[::1]:${bystander.port}`],
    ["a decimal IPv4 literal", `2130706433:${bystander.port}`],
    ["a hexadecimal IPv4 literal", `0x7f000001:${bystander.port}`],
    ["the upstream's own address", UPSTREAM_HOST],
    ["an empty value", ""],
    ["a very long value", `${"a".repeat(7000)}.example`],
  ];
  for (const [name, host] of hosts) await check(t, `Host: ${name}`, get("/api/products", [`Host: ${host}`]), PRODUCTS);
  // HTTP/1.0 without Host: still the configured upstream, with its Host.
  await check(t, "HTTP/1.0 without Host", "GET /api/products HTTP/1.0\r\n\r\n", PRODUCTS);
  // The Host a protected request names grants nothing: judged as the path it is.
  await check(t, "Host naming the upstream on a protected path", get("/api/inventory", [`Host: ${UPSTREAM_HOST}`]), { status: 401, code: "UNAUTHENTICATED", reason: "NO_MATCHING_RULE" });
});

t.test("duplicate and malformed Host headers reach nothing but the configured upstream", async (t) => {
  // Class: Host ambiguity between hops (J. Kettle, "Practical HTTP Host header attacks", 2013): one hop
  // uses the first Host, another the last. Userinfo in Host: Django CVE-2012-4520 (get_host() accepted
  // `user:pass@host` Host values and built arbitrary URLs from them).
  const cases: Array<[string, string[]]> = [
    ["duplicate Host, the bystander second", [`Host: ${UPSTREAM_HOST}`, `Host: ${EVIL}`]],
    ["duplicate Host, the bystander first", [`Host: ${EVIL}`, `Host: ${UPSTREAM_HOST}`]],
    ["Host with userinfo", [`Host: user:secret@${EVIL}`]],
    ["Host with a path", [`Host: ${EVIL}/api/admin?`]],
    ["Host with a space", [`Host: ${EVIL} evil.example`]],
  ];
  for (const [name, headers] of cases) {
    // RFC 9112 §3.2: a server MUST answer 400 to more than one Host field line or an invalid Host value;
    // hops behind a gateway that let both through would disagree about which one counts.
    await check(t, name, get("/api/products", headers), { status: 400, code: "MALFORMED_REQUEST", reason: "INVALID_HOST" });
  }
});

t.test("absolute-form, authority-form and CONNECT targets naming another host are refused", async (t) => {
  // Class: open reverse proxy through absolute-form (RFC 9112 §3.2.2: a server MUST accept it, a
  // gateway must not let it pick the authority), Apache mod_proxy CVE-2011-3368 (`GET @host/`).
  const absolute: Array<[string, string]> = [
    ["the bystander", `http://${EVIL}/api/products`],
    ["the bystander with userinfo", `http://user@${EVIL}/api/products`],
    ["the bystander over https", `https://${EVIL}/api/products`],
    ["the configured upstream, on a protected path", `http://${UPSTREAM_HOST}/api/admin/users`],
    ["a name", "http://evil.example/api/products"],
  ];
  for (const [name, target] of absolute) {
    await check(t, `absolute-form naming ${name}`, get(target, [`Host: ${EVIL}`]), { status: 400, code: "BAD_REQUEST_TARGET", reason: "ABSOLUTE_FORM" });
  }
  await check(t, "absolute-form over HTTP/1.0", `GET http://${EVIL}/api/products HTTP/1.0\r\n\r\n`, { status: 400, code: "BAD_REQUEST_TARGET", reason: "ABSOLUTE_FORM" });
  // CVE-2011-3368: `GET @host/path` turned `http://backend` + target into `http://backend@host/path`.
  await check(t, "GET @host/path", get(`@${EVIL}/api/products`), { status: 400, code: "MALFORMED_REQUEST" });
  await check(t, "authority-form with GET", get(EVIL), { status: 400, code: "MALFORMED_REQUEST" });
  // CONNECT would make the gateway a TCP tunnel to any address.
  const connect = await check(t, "CONNECT to the bystander", request(`CONNECT ${EVIL} HTTP/1.1`, [`Host: ${EVIL}`]), { status: 405, code: "METHOD_NOT_ALLOWED" });
  t.notMatch(connect.headers, /^HTTP\/1\.1 200/, "no tunnel established");
});

t.test("`//host/path` and userinfo-looking paths stay paths of the configured upstream", async (t) => {
  // CVE-2021-21321 (fastify-reply-from < 4.0.2): a crafted target made the plugin request a URL outside
  // the configured base (reply-from now special-cases sources starting with `//`); the gateway hands undici
  // the configured origin and the path apart, and `//` is collapsed before. Also the URL-parser confusion class (O. Tsai, "A New
  // Era of SSRF", Black Hat 2017; url-parse CVE-2018-3774): in `origin + path`, a path like `//host` or
  // `@host` must never become the authority.
  await check(t, "//bystander/api/products", get(`//${EVIL}/api/products`), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "///bystander/api/products", get(`///${EVIL}/api/products`), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "//evil.example/api/products", get("//evil.example/api/products"), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "/@bystander/api/products", get(`/@${EVIL}/api/products`), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "/@evil.example/api", get("/@evil.example/api"), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "/api@evil.example", get("/api@evil.example"), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "/api@bystander/products", get(`/api@${EVIL}/products`), { status: 404, code: "ROUTE_NOT_FOUND" });
  // Inside /api they are product ids like any other: forwarded, as canonical paths, to the configured upstream (which has no such product).
  await check(t, "/api/products//bystander", get(`/api/products//${EVIL}`), { status: 404, upstream: [`GET /api/products/${EVIL}`] });
  await check(t, "/api/products/@bystander", get(`/api/products/@${EVIL}`), { status: 404, upstream: [`GET /api/products/@${EVIL}`] });
  await check(t, "/api/products/x@bystander", get(`/api/products/x@${EVIL}`), { status: 404, upstream: [`GET /api/products/x@${EVIL}`] });
  await check(t, "/api/products/%40bystander", get(`/api/products/%40${EVIL}`), { status: 404, upstream: [`GET /api/products/%40${EVIL}`] });
  await check(t, "/api/products/user:pw@bystander", get(`/api/products/user:pw@${EVIL}`), { status: 404, upstream: [`GET /api/products/user:pw@${EVIL}`] });
  await check(t, "/api/products/http:%2F%2Fbystander", get(`/api/products/http:%2F%2F${EVIL}`), { status: 400, code: "BAD_REQUEST_TARGET", reason: "ENCODED_SEPARATOR" });
  await check(t, "/api/products\\@bystander", get(`/api/products\\@${EVIL}`), { status: 400, code: "BAD_REQUEST_TARGET", reason: "BACKSLASH" });
});

t.test("`unix:` socket paths, in the path or the query, are just data", async (t) => {
  // Apache mod_proxy CVE-2021-40438: `?unix:AAAA…|http://host/` (a very long socket path) made mod_proxy
  // forward to a backend the client chose. The query is forwarded verbatim to the configured upstream only.
  const long = "A".repeat(5000);
  const query = `/api/products?unix:${long}|http://${EVIL}/`;
  await check(t, "?unix:AAAA…|http://bystander/", get(query), { status: 200, upstream: [`GET ${query}`] });
  await check(t, "/unix:AAAA…|http://bystander/api/products", get(`/unix:${long}|http://${EVIL}/api/products`), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "/api/products/unix:x|http:bystander", get(`/api/products/unix:x|http:${EVIL}`), { status: 404, upstream: [`GET /api/products/unix:x%7Chttp:${EVIL}`] });
  await check(t, "/api/products/unix:x%7Chttp:%2F%2Fbystander", get(`/api/products/unix:x%7Chttp:%2F%2F${EVIL}`), { status: 400, code: "BAD_REQUEST_TARGET", reason: "ENCODED_SEPARATOR" });
});

t.test("X-Forwarded-Host, Forwarded host= and friends choose nothing and are not passed on", async (t) => {
  // Class: forwarding headers trusted for routing or URL building (Rails Host Authorization CVE-2021-22942,
  // X-Forwarded-Host; Symfony CVE-2018-14773, X-Original-URL): the gateway's only routing input is the
  // canonical path.
  await check(
    t,
    "X-Forwarded-Host, Forwarded, X-Forwarded-Port/-Proto/-Server, X-Host, X-Original-Host",
    get("/api/products", [
      "Host: gateway.example",
      `X-Forwarded-Host: ${EVIL}`,
      `Forwarded: for=1.2.3.4;host=${EVIL};proto=https`,
      `X-Forwarded-Port: ${bystander.port}`,
      "X-Forwarded-Proto: https",
      `X-Forwarded-Server: ${EVIL}`,
      `X-Host: ${EVIL}`,
      `X-Original-Host: ${EVIL}`,
      `X-HTTP-Host-Override: ${EVIL}`,
    ]),
    PRODUCTS,
  );
  const [seen] = await upstreamLog();
  for (const h of ["x-forwarded-host", "forwarded", "x-forwarded-port", "x-forwarded-server", "x-host", "x-original-host", "x-http-host-override"]) t.equal(seen?.headers[h], undefined, `${h} is stripped`);
  t.equal(seen?.headers["x-forwarded-proto"], "http", "x-forwarded-proto is the gateway's (publicUrl's scheme)");
  t.equal(seen?.headers["x-forwarded-for"], "127.0.0.1", "x-forwarded-for is the socket address");
  // Upper-case and underscore spellings fold to the same names.
  await check(t, "X_Forwarded_Host", get("/api/products", ["Host: gateway.example", `X_Forwarded_Host: ${EVIL}`, `FORWARDED: host=${EVIL}`]), PRODUCTS);
  const [folded] = await upstreamLog();
  t.equal(folded?.headers["x_forwarded_host"], undefined, "x_forwarded_host is stripped");
  t.equal(folded?.headers.forwarded, undefined, "FORWARDED is stripped");
});

t.test("route-definition endpoints of other gateways are not routes here", async (t) => {
  // Spring Cloud Gateway CVE-2022-22947: the exposed actuator let a client add a route (any `uri`, SpEL
  // in its filters) through /actuator/gateway/routes and activate it with /actuator/gateway/refresh.
  const route = JSON.stringify({ id: "evil", uri: `http://${EVIL}`, predicates: [{ name: "Path", args: { _genkey_0: "/api/**" } }] });
  const json = ["Host: gateway.example", "Content-Type: application/json"];
  await check(t, "POST /actuator/gateway/routes/evil", request("POST /actuator/gateway/routes/evil HTTP/1.1", json, route), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "POST /actuator/gateway/refresh", request("POST /actuator/gateway/refresh HTTP/1.1", json, "{}"), { status: 404, code: "ROUTE_NOT_FOUND" });
  await check(t, "POST /api/actuator/gateway/routes/evil", request("POST /api/actuator/gateway/routes/evil HTTP/1.1", json, route), { status: 403, code: "FORBIDDEN", reason: "ENDPOINT_NOT_MAPPED" });
  await check(t, "GET /api/products afterwards", get("/api/products"), PRODUCTS);
});

t.test("attribute lookups built from path parameters go to the configured upstream only", async (t) => {
  // Class: SSRF through a server-side lookup URL assembled from request input. The resolver appends the
  // canonical (still encoded) segment to the configured upstream's URL, so it can only name a path there.
  const auth = ["Host: gateway.example", `Authorization: Bearer ${user.token}`];
  for (const id of [`@${EVIL}`, `%40${EVIL}`, `x%3F@${EVIL}`, `x%23@${EVIL}`, `user:pw@${EVIL}`]) {
    await check(t, `GET /api/orders/${id}`, get(`/api/orders/${id}`, auth), { status: 404, code: "RESOURCE_NOT_FOUND", upstream: [`GET /.well-known/gerbang/attributes/Order/${id}`] });
  }
  await check(t, "GET /api/orders/http:%2F%2Fbystander", get(`/api/orders/http:%2F%2F${EVIL}`, auth), { status: 400, code: "BAD_REQUEST_TARGET", reason: "ENCODED_SEPARATOR" });
  await check(t, "GET /api/orders/..%2F..", get("/api/orders/..%2F..%2F", auth), { status: 400, code: "BAD_REQUEST_TARGET", reason: "ENCODED_SEPARATOR" });
});

t.test("password-reset links are built from publicUrl, not from Host or forwarding headers", { skip: pgMissing === false ? false : pgMissing }, async (t) => {
  // Host header poisoning of password-reset links: Django CVE-2012-4520 (and the same class in many
  // frameworks): the link in the mail pointed at the host the attacker sent, leaking the token.
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  const email = "buyer@demo.gerbang.dev";
  const body = JSON.stringify({ email, redirectTo: "/" });
  const poisoned = [`Host: ${EVIL}`, `X-Forwarded-Host: ${EVIL}`, `Forwarded: host=${EVIL};proto=https`, `X-Forwarded-Proto: https`, `X-Original-Host: ${EVIL}`, "Content-Type: application/json"];
  await check(t, "POST /api/auth/request-password-reset with a poisoned Host", request("POST /api/auth/request-password-reset HTTP/1.1", poisoned, body), { status: 200 });
  const { rows } = await db.query<{ text: string }>('SELECT text FROM mail_outbox WHERE "to" = $1 AND kind = $2 ORDER BY id DESC LIMIT 1', [email, "reset-password"]);
  const text = rows[0]?.text ?? "";
  t.match(text, `${env.url}/api/auth/reset-password/`, "the link points at publicUrl");
  t.notMatch(text, String(bystander.port), "the poisoned host is nowhere in the mail");
  t.notMatch(text, /https:/, "nor the poisoned scheme");
  // Better Auth's own redirect check: a reset that would send the browser to the bystander is refused.
  const redirect = JSON.stringify({ email, redirectTo: `http://${EVIL}/` });
  const refused = await check(t, "redirectTo the bystander", request("POST /api/auth/request-password-reset HTTP/1.1", ["Host: gateway.example", "Content-Type: application/json"], redirect), { status: 403 });
  t.match(refused.body, /redirect/i, "refused for its redirect URL");
});

t.test("over the whole file, the bystander never saw a connection", async (t) => {
  t.same(bystander.connections, [], "no outbound connection went anywhere but the configured upstream");
  t.equal((await rawRequest(env.url, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).status, 200, "the gateway is healthy");
});
