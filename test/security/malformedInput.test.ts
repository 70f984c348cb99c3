// Bypass regression suite, oversized and malformed input (issue 4): raw requests to a real gateway
// process in front of the demo upstream, which records exactly what it received. Each case names the
// class and the public advisory it models. Limits must hold for every content type and framing, a
// body the policy reads must be the body the upstream parses (or be refused), bad input is a 4xx from
// the catalogue and never a 500, and one slow client must not hold up anybody else.
import t from "tap";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv, type ReceivedRequest } from "../helpers/gatewayEnv.ts";
import { errorOf } from "../helpers/catalogueError.ts";
import { rawRequest, type RawResponse } from "../helpers/rawHttp.ts";

/** Small enough to test cheaply, large enough for a 100000-deep JSON array (200 kB). */
const LIMIT = 262_144;
const TIMEOUTS = { headersTimeoutMs: 2000, requestTimeoutMs: 4000 };

const pgMissing = await serviceGate("postgres");
// One gateway for the file, with short client timeouts for the slow-client cases.
const env: GatewayEnv = await startGatewayEnv({ postgres: pgMissing === false, serverConfig: { bodyLimitBytes: LIMIT, ...TIMEOUTS } });
t.teardown(() => env.close());

const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
const USER = `Authorization: Bearer ${user.token}`;
const ADMIN = `Authorization: Bearer ${admin.token}`;

/** One request with Host, Connection: close and (for a body) Content-Length; the body is sent as latin1 bytes. */
const send = (head: string, body = "", timeoutMs = 5000): Promise<RawResponse> =>
  rawRequest(env.url, `${head}\r\nHost: gateway.example\r\nConnection: close\r\n${body === "" ? "" : `Content-Length: ${Buffer.byteLength(body, "latin1")}\r\n`}\r\n${body}`, timeoutMs);
const utf8 = (text: string): string => Buffer.from(text, "utf8").toString("latin1");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Fixtures, created through the gateway: the user's shop, a product and a pending order. PATCH
// /api/orders/:id has `fields: body`, so the gateway parses that body; the buyer may write only
// `shippingAddress`, never `status`.
async function create(path: string, body: unknown): Promise<string> {
  const response = await fetch(`${env.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = (await response.json()) as { id?: string };
  if (response.status !== 201 || json.id === undefined) throw new Error(`fixture ${path}: ${response.status}`);
  return json.id;
}
const shop = await create("/api/shops", { name: "Toko Input", region: "eu" });
const product = await create(`/api/shops/${shop}/products`, { name: "Kecap", priceCents: 900 });
const order = await create("/api/orders", { productId: product, quantity: 1, shippingAddress: "Jl. Awal 1", region: "eu" });
const PATCH_ORDER = `PATCH /api/orders/${order} HTTP/1.1\r\n${USER}`;
const FORBIDDEN_BODY = '{"status":"shipped"}';

/** Sends a PATCH of the buyer's order whose body the policy must refuse; returns the answer and what was forwarded. */
async function refusedPatch(contentType: string | null, body: string): Promise<{ response: RawResponse; forwarded: ReceivedRequest[] }> {
  await env.clearReceived();
  const response = await send(`${PATCH_ORDER}${contentType === null ? "" : `\r\nContent-Type: ${contentType}`}`, body);
  return { response, forwarded: await env.received() };
}
async function orderStatus(): Promise<string | undefined> {
  const response = await fetch(`${env.url}/api/orders/${order}`, { headers: { authorization: `Bearer ${user.token}` } });
  return ((await response.json()) as { status?: string }).status;
}

t.test("oversized header blocks: 431 with the catalogue's JSON body, nothing forwarded", async (t) => {
  // Class: oversized headers. CVE-2018-12121 (Node.js: large header blocks exhausted memory; the
  // fix introduced --max-http-header-size), and header-count floods of the same family.
  const cases: Array<[string, string]> = [
    ["one 20 kB header", `X-Big: ${"y".repeat(20_000)}`],
    ["1500 headers of 16 bytes", Array.from({ length: 1500 }, (_, i) => `X-H-${String(i).padStart(4, "0")}: vvvvvv`).join("\r\n")],
    ["a 20 kB Cookie next to a valid credential", `${ADMIN}\r\nCookie: pad=${"c".repeat(20_000)}`],
  ];
  for (const [name, headers] of cases) {
    await env.clearReceived();
    const response = await send(`GET /api/admin/stats HTTP/1.1\r\n${headers}`);
    t.equal(response.status, 431, `${name}: 431`);
    t.match(response.headers, /\r\ncontent-type: application\/json/i, `${name}: JSON`);
    t.equal(errorOf(response.body).code, "HEADERS_TOO_LARGE", `${name}: catalogue code`);
    t.match(response.headers, /\r\nconnection: close/i, `${name}: connection closed`);
    t.same(await env.received(), [], `${name}: nothing reached the upstream`);
  }
  await env.clearReceived();
  const under = await send(`GET /api/products HTTP/1.1\r\nX-Big: ${"y".repeat(12_000)}`);
  t.equal(under.status, 200, "a 12 kB header is under the 16 KiB limit");
  t.equal((await env.received())[0]?.headers["x-big"]?.length, 12_000, "and reaches the upstream whole");
});

t.test("many small header fields: refused over server.maxHeaderCount, the identity intact below it", async (t) => {
  // Class: header-count truncation. Node keeps only the first N header fields of a message and drops
  // the rest silently (2000 by default; Apache's LimitRequestFields is the same kind of limit). 995
  // fields of 6 bytes are far below server.maxHeaderBytes; a gateway that forwarded them all followed
  // by its own x-gerbang-* and x-forwarded-* headers would have an upstream with such a limit drop the
  // gateway's headers, not the client's (cf. CVE-2018-12121 for the header-limit family).
  await env.clearReceived();
  const filler = (n: number): string => Array.from({ length: n }, (_, i) => `a${i}:b`).join("\r\n");
  const response = await send(`GET /api/products HTTP/1.1\r\n${USER}\r\n${filler(995)}`);
  t.equal(response.status, 431, "995 fields: 431");
  t.match(errorOf(response.body), { code: "HEADERS_TOO_LARGE", reason: "TOO_MANY_HEADERS" });
  t.match(response.headers, /\r\nconnection: close/i);
  t.same(await env.received(), [], "nothing reached the upstream");
  const fine = await send(`GET /api/products HTTP/1.1\r\n${USER}\r\n${filler(90)}`);
  t.equal(fine.status, 200, "90 fields (with Host, Authorization and Connection: 93, under the default 100): forwarded");
  const [seen] = await env.received();
  t.equal(seen?.headers["x-gerbang-user"], user.userId, "the identity arrives");
  t.type(seen?.headers["x-gerbang-assertion"], "string");
  t.equal(seen?.headers["x-forwarded-for"], "127.0.0.1");
  t.equal(seen?.headers.a89, "b", "and so do the client's fields");
});

t.test("oversized bodies: 413 for every content type, chunked or declared, nothing forwarded complete", async (t) => {
  // Class: oversized bodies. A limit enforced by one parser only (JSON) but not for others, or only
  // for a declared Content-Length and not for chunked framing: CVE-2023-24998 (Apache Commons
  // FileUpload: unbounded multipart), CVE-2014-0075 (Tomcat: chunked bodies past the size limits),
  // CWE-770. The admin may POST anything to /api/admin/**, so the body is read and forwarded as is.
  const types: Array<string | null> = ["application/json", "text/plain", "application/octet-stream", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", null];
  for (const type of types) {
    const label = type ?? "no content type";
    const header = `POST /api/admin/upload HTTP/1.1\r\n${ADMIN}${type === null ? "" : `\r\nContent-Type: ${type}`}`;
    await env.clearReceived();
    const over = await send(header, "x".repeat(LIMIT + 1));
    t.equal(over.status, 413, `${label}: one byte over the limit is 413`);
    t.equal(errorOf(over.body).code, "PAYLOAD_TOO_LARGE", `${label}: catalogue code`);
    t.same(await env.received(), [], `${label}: nothing forwarded`);
    // The limit itself is accepted and forwarded byte for byte (a JSON body is parsed by the demo upstream).
    const exact = type === "application/json" ? `{"x":"${"x".repeat(LIMIT - 8)}"}` : type === "application/x-www-form-urlencoded" ? `x=${"x".repeat(LIMIT - 2)}` : "x".repeat(LIMIT);
    const at = await send(header, exact);
    t.equal(at.status, 200, `${label}: exactly the limit is forwarded`);
    const [seen] = await env.received();
    const length = typeof seen?.body === "string" ? seen.body.length : JSON.stringify(seen?.body ?? null).length;
    t.equal(length, LIMIT, `${label}: the upstream got all ${LIMIT} bytes`);
  }

  await env.clearReceived();
  const chunk = `1000\r\n${"x".repeat(4096)}\r\n`;
  const chunked = await rawRequest(env.url, `POST /api/admin/upload HTTP/1.1\r\nHost: x\r\n${ADMIN}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk.repeat(LIMIT / 4096 + 1)}0\r\n\r\n`);
  t.equal(chunked.status, 413, "a chunked body without Content-Length is cut at the limit too");
  t.equal(errorOf(chunked.body).code, "PAYLOAD_TOO_LARGE");
  // Streamed as it arrived (the policy does not read it), then aborted at the limit: the upstream saw
  // a request whose body broke off, which it never parsed, never a complete truncated one.
  const cut = await env.received();
  t.ok(cut.length <= 1 && cut.every((r) => r.body === undefined), "a streamed body cut at the limit never reached the upstream complete");
  await env.clearReceived();
  const declared = await rawRequest(env.url, `POST /api/admin/upload HTTP/1.1\r\nHost: x\r\n${ADMIN}\r\nContent-Type: text/plain\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n`);
  t.equal(declared.status, 413, "a declared 1 GB body is refused before a byte of it is read");
  const parsed = await send(`${PATCH_ORDER}\r\nContent-Type: application/json`, `{"shippingAddress":"${"x".repeat(LIMIT)}"}`);
  t.equal(parsed.status, 413, "also where the policy parses the body: 413, not 400 or 500");
  t.same(await env.received(), [], "nothing forwarded");
});

t.test("malformed and deeply nested JSON where the policy reads the body: 400 or a policy denial, never 500", async (t) => {
  // Class: parser exhaustion and lenient parsers. CVE-2019-11253 (Kubernetes: deeply nested and
  // billion-laughs JSON/YAML bodies), CVE-2020-36518 (jackson-databind: stack overflow on deep nesting),
  // and the JSON5/comment/trailing-comma leniency of the JSON interoperability research (Bishop Fox, 2021):
  // what a strict parser refuses, a lenient upstream would execute.
  const deep = 100_000;
  const cases: Array<[string, string, number, string, string?]> = [
    ["truncated object", '{"shippingAddress":', 400, "INVALID_JSON_BODY"],
    ["trailing comma", '{"shippingAddress":"x",}', 400, "INVALID_JSON_BODY"],
    ["single quotes", "{'shippingAddress':'x'}", 400, "INVALID_JSON_BODY"],
    ["a comment", '{"shippingAddress":"x"/*,"status":"shipped"*/}', 400, "INVALID_JSON_BODY"],
    ["NaN", '{"shippingAddress":NaN}', 400, "INVALID_JSON_BODY"],
    [`${deep} unclosed [`, "[".repeat(deep), 400, "INVALID_JSON_BODY"],
    [`${deep} nested arrays`, "[".repeat(deep) + "]".repeat(deep), 400, "INVALID_JSON_BODY"],
    ["a string", '"shippingAddress"', 400, "INVALID_JSON_BODY"],
    ["null", "null", 400, "INVALID_JSON_BODY"],
    ["an array of objects", '[{"shippingAddress":"x"}]', 400, "INVALID_JSON_BODY"],
    [`a forbidden field holding ${deep} nested arrays`, `{"status":${"[".repeat(deep)}${"]".repeat(deep)}}`, 403, "FORBIDDEN", "FIELD_NOT_PERMITTED"],
    ["40000 nested objects", `${'{"a":'.repeat(40_000)}1${"}".repeat(40_000)}`, 403, "FORBIDDEN", "FIELD_NOT_PERMITTED"],
  ];
  for (const [name, body, status, code, reason] of cases) {
    const { response, forwarded } = await refusedPatch("application/json", body);
    t.equal(response.status, status, `${name}: ${status}`);
    t.equal(errorOf(response.body).code, code, `${name}: ${code}`);
    if (reason !== undefined) t.equal(errorOf(response.body).reason, reason, `${name}: ${reason}`);
    t.same(forwarded, [], `${name}: nothing forwarded`);
  }
  t.equal(await orderStatus(), "pending", "the order was never changed");
  t.equal((await send("GET /healthz HTTP/1.1")).status, 200, "the gateway is healthy afterwards");
});

t.test("__proto__ and constructor.prototype keys never change the decision", async (t) => {
  // Class: prototype pollution through parsed input. CVE-2022-24999 (qs: __proto__ in a query string),
  // CVE-2019-10744 (lodash defaultsDeep: constructor.prototype), CVE-2018-3721 (lodash merge: __proto__).
  // JSON.parse makes __proto__ an own key, so it is a body field like any other and is judged as one.
  const cases: Array<[string, string, string]> = [
    ["__proto__ beside an allowed field", '{"shippingAddress":"x","__proto__":{"status":"shipped"}}', "__proto__"],
    ["constructor.prototype beside an allowed field", '{"shippingAddress":"x","constructor":{"prototype":{"status":"shipped"}}}', "constructor"],
    ["__proto__ granting the allowed field", '{"__proto__":{"shippingAddress":"x"},"status":"shipped"}', "__proto__"],
    ["an escaped __proto__ key", '{"shippingAddress":"x","\\u005f_proto__":{"status":"shipped"}}', "__proto__"],
  ];
  for (const [name, body, field] of cases) {
    const { response, forwarded } = await refusedPatch("application/json", body);
    t.equal(response.status, 403, `${name}: 403`);
    t.match(errorOf(response.body), { code: "FORBIDDEN", reason: "FIELD_NOT_PERMITTED" }, `${name}: FIELD_NOT_PERMITTED`);
    t.match(errorOf(response.body).message ?? "", field, `${name}: names ${field}`);
    t.same(forwarded, [], `${name}: nothing forwarded`);
  }
  // Nothing leaked into the gateway's own objects: the same caller is judged as before.
  t.equal((await refusedPatch("application/json", FORBIDDEN_BODY)).response.status, 403, "status is still not writable");
  const anonymous = await send("GET /api/inventory?__proto__[roles]=admin&constructor[prototype][admin]=1 HTTP/1.1");
  t.equal(anonymous.status, 401, "pollution attempts in the query grant nothing");
  await env.clearReceived();
  const allowed = await send(`${PATCH_ORDER}\r\nContent-Type: application/json`, '{"shippingAddress":"Jl. Proto 2"}');
  t.equal(allowed.status, 200, "the allowed field alone still passes");
  t.equal(await orderStatus(), "pending");
});

t.test("invalid UTF-8 in a JSON body the policy reads is refused, never decoded leniently", async (t) => {
  // Class: decoder differentials. CVE-2000-0884 (IIS: overlong UTF-8 accepted by one layer, not the
  // other). An overlong encoding of `"` (C0 A2) would, for a lenient decoder, close the string and open a
  // `status` key that the strict gateway never saw.
  const overlongQuote = "\xc0\xa2";
  const cases: Array<[string, string]> = [
    ["overlong quote smuggling a status key", `{"shippingAddress":"x${overlongQuote},${overlongQuote}status${overlongQuote}:${overlongQuote}shipped"}`],
    ["a lone continuation byte", '{"shippingAddress":"\x80"}'],
    ["a truncated sequence", '{"shippingAddress":"\xc3"}'],
    ["an encoded surrogate", '{"shippingAddress":"\xed\xa0\x80"}'],
    ["0xFF", '{"shippingAddress":"\xff"}'],
  ];
  for (const [name, body] of cases) {
    const { response, forwarded } = await refusedPatch("application/json", body);
    t.equal(response.status, 400, `${name}: 400`);
    t.equal(errorOf(response.body).code, "INVALID_JSON_BODY", `${name}: INVALID_JSON_BODY`);
    t.same(forwarded, [], `${name}: nothing forwarded`);
  }
  const utf16 = Buffer.from(`\ufeff${FORBIDDEN_BODY}`, "utf16le").toString("latin1");
  const declared16 = await refusedPatch("application/json; charset=utf-16", utf16);
  t.equal(declared16.response.status, 400, "a UTF-16 body, even declared as such, is not read as something else");
  t.same(declared16.forwarded, []);
  // A UTF-8 byte-order mark is stripped by both the gateway and the upstream's parser: judged alike.
  const bom = await refusedPatch("application/json", `\xef\xbb\xbf${FORBIDDEN_BODY}`);
  t.equal(bom.response.status, 403, "a BOM does not hide a forbidden field");
  t.same(bom.forwarded, []);
  await env.clearReceived();
  const accepted = await send(`${PATCH_ORDER}\r\nContent-Type: application/json`, utf8('\ufeff{"shippingAddress":"Jl. Ça Va 3"}'));
  t.equal(accepted.status, 200, "valid UTF-8 with a BOM and non-ASCII text passes");
  t.same((await env.received())[0]?.body, { shippingAddress: "Jl. Ça Va 3" }, "the upstream parsed what the policy judged");
});

t.test("content-type spellings: the policy judges the body the upstream parses, or refuses", async (t) => {
  // Class: media-type confusion. CVE-2025-32442 (Fastify: a content type in other case or with extra
  // whitespace skipped the body validation of the route), CVE-2022-41919 (Fastify: a header naming
  // several media types was parsed as the wrong one). The gateway reads a body for the policy only when
  // it is declared JSON; what it forwards is the header it judged.
  const judgedAsJson = [
    "application/json",
    "Application/JSON",
    "APPLICATION/JSON; CHARSET=UTF-8",
    // The upstream (like the gateway) decodes UTF-8 whatever the charset says; a charset-honouring
    // upstream would fail to parse such bytes as UTF-16, it could not see other fields.
    "application/json; charset=utf-16",
    "application/json;;",
    " application/json",
    "application/json\t",
    "application/json ;x=y",
    "application/merge-patch+json",
  ];
  for (const type of judgedAsJson) {
    const label = JSON.stringify(type);
    const { response, forwarded } = await refusedPatch(type, FORBIDDEN_BODY);
    t.equal(response.status, 403, `${label}: judged as JSON, status refused`);
    t.equal(errorOf(response.body).reason, "FIELD_NOT_PERMITTED", `${label}: FIELD_NOT_PERMITTED`);
    t.same(forwarded, [], `${label}: nothing forwarded`);
    await env.clearReceived();
    const address = `Jl. ${type.trim().slice(0, 20)}`;
    const allowed = await send(`${PATCH_ORDER}\r\nContent-Type: ${type}`, JSON.stringify({ shippingAddress: address }));
    t.equal(allowed.status, 200, `${label}: the allowed field is forwarded`);
    const [seen] = await env.received();
    // Parsed by the upstream's JSON parser, or kept as text by its catch-all parser (merge-patch): never other fields.
    t.ok(JSON.stringify(seen?.body) === JSON.stringify({ shippingAddress: address }) || seen?.body === JSON.stringify({ shippingAddress: address }), `${label}: the upstream got the judged body`);
  }
  t.equal(await orderStatus(), "pending", "no spelling changed the status");

  const refused: Array<string | null> = [
    "application/x-json",
    "text/json",
    "text/plain",
    "application/jsonx",
    "application/json, text/plain",
    "text/plain, application/json",
    "application/json (comment)",
    ";",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    null,
  ];
  for (const type of refused) {
    const label = type === null ? "no content type" : JSON.stringify(type);
    const { response, forwarded } = await refusedPatch(type, FORBIDDEN_BODY);
    t.equal(response.status, 415, `${label}: 415`);
    t.equal(errorOf(response.body).code, "UNSUPPORTED_MEDIA_TYPE", `${label}: UNSUPPORTED_MEDIA_TYPE`);
    t.same(forwarded, [], `${label}: nothing forwarded`);
  }

  // Two Content-Type headers: Node keeps the first and the gateway forwards only that one.
  const textFirst = await refusedPatch("text/plain\r\nContent-Type: application/json", FORBIDDEN_BODY);
  t.equal(textFirst.response.status, 415, "text/plain then application/json: judged as text/plain, 415");
  t.same(textFirst.forwarded, []);
  const jsonFirst = await refusedPatch("application/json\r\nContent-Type: text/plain", FORBIDDEN_BODY);
  t.equal(jsonFirst.response.status, 403, "application/json then text/plain: judged as JSON, 403");
  t.same(jsonFirst.forwarded, []);
  await env.clearReceived();
  const twice = await send(`${PATCH_ORDER}\r\nContent-Type: application/json\r\nContent-Type: text/plain`, '{"shippingAddress":"Jl. Dua 2"}');
  t.equal(twice.status, 200);
  t.equal((await env.received())[0]?.headers["content-type"], "application/json", "the upstream gets the one content type that was judged");

  // An encoded body cannot be judged; body-parser and others would inflate it, so it is refused.
  const gzip = await refusedPatch("application/json\r\nContent-Encoding: gzip", gzipSync(FORBIDDEN_BODY).toString("latin1"));
  t.equal(gzip.response.status, 400, "Content-Encoding: gzip: 400");
  t.equal(errorOf(gzip.response.body).code, "INVALID_JSON_BODY");
  t.same(gzip.forwarded, []);
});

t.test("pathological content types are answered at once", async (t) => {
  // Class: content-type parser DoS. CVE-2022-39288 (Fastify: a crafted Content-Type crashed the
  // process) and catastrophic backtracking in media-type regexes (CWE-1333). Each value is just below
  // the 16 KiB header limit; every answer must come well inside the 5 s socket timeout.
  const values = [
    `application/${"+".repeat(15_000)}`,
    `application/json;${" ".repeat(15_000)}x`,
    `application/json; a="${'\\"'.repeat(7000)}`,
    `${"a".repeat(15_000)}/json`,
    `application/json;${";a=b".repeat(3500)}`,
  ];
  for (const value of values) {
    const { response, forwarded } = await refusedPatch(value, FORBIDDEN_BODY);
    t.ok([403, 415].includes(response.status), `${value.slice(0, 24)}…: ${response.status} (refused or judged), never 500`);
    t.same(forwarded, [], "nothing forwarded");
  }
  t.equal((await send("GET /healthz HTTP/1.1")).status, 200, "the gateway is healthy afterwards");
});

/** A connection that sends `head`, then one more byte of `drip` every `everyMs` until it is closed. */
function trickle(head: string, drip: string, everyMs: number): { done: Promise<{ data: string; closedAfterMs: number }>; stop: () => void } {
  const { hostname, port } = new URL(env.url);
  const socket = connect({ host: hostname, port: Number(port) });
  const started = Date.now();
  let data = "";
  let sent = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(drip[sent++ % drip.length] ?? "a", "latin1");
  }, everyMs);
  socket.on("data", (chunk: Buffer) => (data += chunk.toString("latin1")));
  socket.on("error", () => undefined);
  if (head !== "") socket.write(head, "latin1");
  const done = new Promise<{ data: string; closedAfterMs: number }>((resolve) =>
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ data, closedAfterMs: Date.now() - started });
    }),
  );
  return {
    done,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

t.test("slow clients: others are served meanwhile, and the slow ones are cut off", async (t) => {
  // Class: slow headers and slow bodies. CVE-2018-12122 (Node.js: headers trickled forever held a socket,
  // fixed by server.headersTimeout), CVE-2007-6750 (Apache httpd Slowloris), and the R.U.D.Y. slow-POST
  // attack on bodies. A connection that sends nothing at all is the degenerate case.
  await env.clearReceived();
  const slowHeaders = trickle("GET /api/products HTTP/1.1\r\nHost: x\r\nX-Slow: ", "abcdefgh", 200);
  const slowBody = trickle(`PATCH /api/orders/${order} HTTP/1.1\r\nHost: x\r\n${USER}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"status":"`, "s", 200);
  const silent = trickle("", "", 60_000);
  const clients = [slowHeaders, slowBody, silent];
  t.teardown(() => clients.forEach((c) => c.stop()));
  for (let i = 0; i < 4; i++) {
    const normal = await send("GET /api/products HTTP/1.1", "", 3000);
    t.equal(normal.status, 200, `a normal request on another connection is answered while the slow ones are pending (${i + 1})`);
    await sleep(150);
  }
  // Without timeouts nothing would end them; wait at most 20 s either way.
  const deadline = sleep(20_000).then(() => null);
  const outcomes = await Promise.all(clients.map((c) => Promise.race([c.done, deadline])));
  for (const [name, outcome] of [["slow headers", outcomes[0]], ["slow body", outcomes[1]], ["silent connection", outcomes[2]]] as const) {
    t.ok(outcome !== null, `${name}: closed by the gateway within 20 s${outcome === null ? "" : ` (after ${outcome?.closedAfterMs} ms)`}`);
    if (outcome === null || outcome === undefined) continue;
    t.match(outcome.data, /^HTTP\/1\.1 408 /, `${name}: 408`);
    t.equal(errorOf(outcome.data.slice(outcome.data.indexOf("\r\n\r\n") + 4)).code, "REQUEST_TIMEOUT", `${name}: REQUEST_TIMEOUT`);
  }
  const forwarded = (await env.received()).map((r) => `${r.method} ${r.url}`);
  t.same(forwarded, Array.from({ length: 4 }, () => "GET /api/products"), "only the normal requests reached the upstream; the slow PATCH never did");
  t.equal(await orderStatus(), "pending");
});
