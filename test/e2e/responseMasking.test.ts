// Issue 17, response field masking: an endpoint with `response: { fields: masked }` answers with the
// fields the caller may not read removed (test/fixtures/policies/masking-1), for objects, arrays and
// envelopes of nested records — and an answer the gateway cannot mask (too large, not JSON, encoded,
// cut short) is a 502 with a reason, never the unmasked bytes. A real gateway process in front of a
// raw TCP upstream that answers with bytes the test writes.
import t from "tap";
import { fileURLToPath } from "node:url";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { startScriptedUpstream } from "../helpers/scriptedUpstream.ts";
import { errorOf } from "../helpers/catalogueError.ts";
import { eventually } from "../helpers/eventually.ts";
import pg from "pg";

const pgMissing = await serviceGate("postgres");
const upstream = await startScriptedUpstream();
t.teardown(() => upstream.close());
const policy = { dir: fileURLToPath(new URL("../fixtures/policies", import.meta.url)), version: "masking-1" };
const env = await startGatewayEnv({
  postgres: pgMissing === false,
  config: { policy, upstreams: [{ name: "scripted", prefix: "/", url: upstream.url, timeoutMs: 2000, circuitBreaker: { failureThreshold: 10000 } }] },
});
t.teardown(() => env.close());
const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");

const IBAN = "DE89370400440532013000";
const order = (id: string, buyerId: string, region: string): Record<string, unknown> => ({
  id,
  buyerId,
  region,
  status: "pending",
  internal: { margin: 0.31 },
  payment: { method: "card", cardLast4: "4242", iban: IBAN },
  items: [{ sku: "padi-ir64", quantity: 2, price: 12.5 }],
  shippingAddress: { street: "Jl. Merdeka 1", city: "Bandung" },
});
const own = order("ord_own", user.userId, "apac");
const other = order("ord_eu", "usr_someone_else", "eu");

let cases = 0;
function answer(status: string, fields: string[], body: string, close = false): string {
  const id = `case-${(cases += 1)}`;
  upstream.script(id, { bytes: `HTTP/1.1 ${status}\r\n${fields.map((f) => `${f}\r\n`).join("")}\r\n${body}`, close });
  return id;
}
const json = (status: string, value: unknown, extra: string[] = []): string => {
  const body = JSON.stringify(value);
  return answer(status, ["Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`, ...extra], body);
};
async function get(path: string, token: string, caseId: string, method = "GET"): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(`${env.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, "x-case": caseId } });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

t.test("a list: each record masked by its own conditions, nested fields and lists of objects included", async (t) => {
  const asUser = await get("/orders", user.token, json("200 OK", [own, other], ["ETag: \"v1\"", "Cache-Control: public, max-age=60"]));
  t.equal(asUser.status, 200);
  t.same(JSON.parse(asUser.text), [
    {
      id: "ord_own",
      buyerId: user.userId,
      region: "apac",
      status: "pending",
      payment: { method: "card", cardLast4: "4242" },
      items: [{ sku: "padi-ir64", quantity: 2, price: 12.5 }],
      shippingAddress: { street: "Jl. Merdeka 1", city: "Bandung" },
    },
    { id: "ord_eu", status: "pending", items: [{ sku: "padi-ir64", quantity: 2 }] },
  ], "own order: all but internal and payment.iban; another's: the summary fields only");
  t.equal(asUser.headers.get("content-length"), String(Buffer.byteLength(asUser.text)), "the length of what is sent");
  t.equal(asUser.headers.get("etag"), null, "no validator of the unmasked bytes");
  t.equal(asUser.headers.get("cache-control"), "no-store", "a per-caller answer is never stored for another");
  t.match(asUser.headers.get("content-type"), /^application\/json/);

  const asSales = await get("/orders", sales.token, json("200 OK", [own, other]));
  t.same(JSON.parse(asSales.text), [{ ...other, payment: { method: "card" } }], "sales (eu): the apac order is not theirs to see at all, the eu one without card or IBAN");
  const asAdmin = await get("/orders", admin.token, json("200 OK", [own, other]));
  t.same(JSON.parse(asAdmin.text), [own, other], "admin: everything");
  t.notMatch(asUser.text + asSales.text, IBAN, "the IBAN reached neither");
  const head = upstream.heads.at(-1) ?? "";
  t.match(head, /\r\naccept-encoding: identity(\r\n|$)/i, "the upstream is asked for bytes the gateway can read");
});

t.test("an envelope (at: orders) keeps its other properties; a single record is masked, or {} when not readable", async (t) => {
  const page = await get("/orders/page", user.token, json("200 OK", { orders: [other], next: "cursor-2", total: 2 }));
  t.same(JSON.parse(page.text), { orders: [{ id: "ord_eu", status: "pending", items: [{ sku: "padi-ir64", quantity: 2 }] }], next: "cursor-2", total: 2 });
  const one = await get("/orders/ord_own", sales.token, json("200 OK", own));
  t.equal(one.status, 200);
  t.same(JSON.parse(one.text), {}, "a record sales may not read: nothing of it");
  const mine = await get("/orders/ord_own", user.token, json("200 OK", own));
  t.same(Object.keys(JSON.parse(mine.text) as object).sort(), ["buyerId", "id", "items", "payment", "region", "shippingAddress", "status"]);
  // A long list is masked a slice at a time; the outcome is the same, in order.
  const many = Array.from({ length: 700 }, (_, i) => ({ id: `o${i}`, buyerId: i % 2 === 0 ? user.userId : "usr_x", status: "pending", internal: { n: i } }));
  const long = await get("/orders/page", user.token, json("200 OK", { orders: many, next: null }));
  t.equal(long.status, 200);
  const longBody = JSON.parse(long.text) as { orders: Array<Record<string, unknown>>; next: null };
  t.equal(longBody.orders.length, 700);
  t.same(longBody.orders.slice(0, 2), [{ id: "o0", buyerId: user.userId, status: "pending" }, { id: "o1", status: "pending" }], "own: all but internal; another's: the summary");
  t.same(longBody.orders.map((o) => o.id), many.map((o) => o.id), "in order");
  const missing = await get("/orders/page", user.token, json("200 OK", { items: [other] }));
  t.equal(missing.status, 502, "an envelope without its records property");
  t.same([errorOf(missing.text).code, errorOf(missing.text).reason], ["RESPONSE_NOT_MASKABLE", "NOT_RECORDS"]);
});

t.test("lists of anything, nested lists, empty keys and CASL's own marker: no denied field escapes", async (t) => {
  const tricky = { ...other, region: "eu", payment: [{ method: "card", iban: IBAN }, null, [{ iban: IBAN }]], "": { payment: { iban: IBAN } }, __caslSubjectType__: "Shop" };
  const asSales = await get("/orders", sales.token, json("200 OK", [tricky]));
  t.equal(asSales.status, 200);
  t.notMatch(asSales.text, IBAN, "the IBAN is removed from every element, at every depth");
  t.same((JSON.parse(asSales.text) as Array<Record<string, unknown>>)[0]?.payment, [{ method: "card" }, null, [{}]], "elements keep their places");
  const asUser = await get("/orders", user.token, json("200 OK", [tricky]));
  t.notMatch(asUser.text, IBAN);
  t.notOk(Object.hasOwn((JSON.parse(asUser.text) as Array<Record<string, unknown>>)[0] ?? {}, ""), "an empty key is never a readable field");
});

t.test("masking is opt-in: an endpoint without it passes the answer as it is", async (t) => {
  const plain = await get("/plain/orders", user.token, json("200 OK", [own]));
  t.same(JSON.parse(plain.text), [own]);
});

t.test("what cannot be masked is refused with 502 and a reason, never sent unmasked", async (t) => {
  const big = JSON.stringify([{ ...other, filler: "x".repeat(5000) }]);
  const chunk = (s: string): string => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  const refusals: Array<[string, string, string]> = [
    ["over maxBytes, by its Content-Length", json("200 OK", [{ ...other, filler: "x".repeat(5000) }]), "TOO_LARGE"],
    ["over maxBytes, chunked", answer("200 OK", ["Content-Type: application/json", "Transfer-Encoding: chunked"], `${chunk(big.slice(0, 3000))}${chunk(big.slice(3000))}0\r\n\r\n`), "TOO_LARGE"],
    ["not JSON", answer("200 OK", ["Content-Type: text/html", "Content-Length: 22"], `<p>${IBAN}</p>`.slice(0, 22)), "NOT_JSON"],
    ["compressed", answer("200 OK", ["Content-Type: application/json", "Content-Encoding: gzip", "Content-Length: 4"], "abcd"), "ENCODED"],
    ["invalid JSON", answer("200 OK", ["Content-Type: application/json", "Content-Length: 30"], `[{"iban":"${IBAN}"`.padEnd(30, " ")), "INVALID_JSON"],
    ["not records", json("200 OK", [IBAN]), "NOT_RECORDS"],
    ["a bare string", json("200 OK", IBAN), "NOT_RECORDS"],
    ["a partial answer", answer("206 Partial Content", ["Content-Type: application/json", "Content-Range: bytes 0-9/100", "Content-Length: 10"], "[{\"iban\":\""), "PARTIAL"],
    ["cut short", answer("200 OK", ["Content-Type: application/json", "Content-Length: 400"], `[{"id":"x","iban":"${IBAN}"`, true), "BODY_FAILED"],
  ];
  for (const [what, caseId, reason] of refusals) {
    const refused = await get("/orders", user.token, caseId);
    t.equal(refused.status, 502, what);
    t.same([errorOf(refused.text).code, errorOf(refused.text).reason], ["RESPONSE_NOT_MASKABLE", reason], `${what}: ${reason}`);
    t.notMatch(refused.text, IBAN, `${what}: none of the upstream's bytes`);
  }
  const after = await get("/orders", user.token, json("200 OK", [other]));
  t.equal(after.status, 200, "and the gateway serves on");
});

t.test("answers of every status with a body are masked; bodiless ones lose the headers of the unmasked bytes", async (t) => {
  const conflict = await get("/orders/ord_eu", user.token, json("409 Conflict", { ...other, error: "version_mismatch" }));
  t.equal(conflict.status, 409, "the status is the upstream's");
  t.same(JSON.parse(conflict.text), { id: "ord_eu", status: "pending", items: [{ sku: "padi-ir64", quantity: 2 }] }, "a 409 carrying the current record is masked like a 200");
  t.notMatch(conflict.text, IBAN);
  const notFound = await get("/orders/nope", user.token, json("404 Not Found", { error: "not_found" }));
  t.equal(notFound.status, 404);
  t.same(JSON.parse(notFound.text), {}, "an error body is masked too: only fields the caller may read get through");
  const html = await get("/orders/nope", user.token, answer("500 Internal Server Error", ["Content-Type: text/html", "Content-Length: 22"], `<p>${IBAN}</p>`.slice(0, 22)));
  t.same([html.status, errorOf(html.text).code, errorOf(html.text).reason], [502, "RESPONSE_NOT_MASKABLE", "NOT_JSON"], "an error page that is not JSON is refused, not passed");
  const head = await get("/orders/ord_own", user.token, answer("200 OK", ["Content-Type: application/json", "Content-Length: 120", "ETag: \"abc\"", "Digest: sha-256=xyz"], ""), "HEAD");
  t.equal(head.status, 200);
  t.equal(head.text, "");
  t.equal(head.headers.get("etag"), null, "HEAD: no validator of the unmasked body");
  t.equal(head.headers.get("digest"), null, "nor its digest");
  t.not(head.headers.get("content-length"), "120", "nor its length");
  t.equal(head.headers.get("cache-control"), "no-store");
  const empty = await get("/orders", user.token, answer("204 No Content", ["ETag: \"e\""], ""));
  t.equal(empty.status, 204);
  t.equal(empty.headers.get("etag"), null);
  const accepted = await get("/orders", user.token, answer("202 Accepted", ["Content-Type: application/json", "Content-Length: 0"], ""));
  t.same([accepted.status, accepted.text], [202, ""], "a 2xx without a body has nothing to mask");
});

t.test("the client's range and validators do not reach a masked endpoint's upstream", async (t) => {
  const response = await fetch(`${env.url}/orders`, {
    headers: { authorization: `Bearer ${user.token}`, "x-case": json("200 OK", [other]), range: "bytes=0-10", "if-none-match": "\"v1\"", "accept-encoding": "gzip, br" },
  });
  t.equal(response.status, 200);
  await response.text();
  const head = upstream.heads.at(-1) ?? "";
  t.notMatch(head, /\r\n(range|if-none-match):/i);
  t.match(head, /\r\naccept-encoding: identity(\r\n|$)/i);
});

t.test("the audit row of a masked answer records how much the caller was not shown", { skip: env.databaseUrl === null ? "needs PostgreSQL" : false }, async (t) => {
  const answered = await get("/orders", user.token, json("200 OK", [own, other]));
  const requestId = answered.headers.get("x-request-id") ?? "";
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  let details: unknown;
  t.ok(await eventually(async () => {
    ({ rows: [{ details } = { details: undefined }] } = await db.query("SELECT details FROM audit_event WHERE request_id = $1", [requestId]));
    return details !== undefined;
  }), "the row is written");
  // Each field removed whole counts once. Own order: internal, payment.iban. The other's: buyerId,
  // region, internal, payment's method, cardLast4 and iban, items.price, shippingAddress's street and city.
  t.same(details, { masked: { removedFields: 2 + 9, removedRecords: 0 } });
});
