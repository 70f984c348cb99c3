// Bypass regression suite, methods and headers (issue 4): raw requests to a real gateway process in
// front of the demo upstream, which records exactly what it received. Each case names the class and
// the advisory it models. What the policy saw must be what the upstream executes: no method switch,
// no identity or routing header from the client, no 500 for odd but harmless hop-by-hop headers.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv } from "../helpers/gatewayEnv.ts";
import { rawRequest } from "../helpers/rawHttp.ts";

const pgMissing = await serviceGate("postgres");
const env: GatewayEnv = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const raw = (head: string, body = ""): Promise<{ status: number; headers: string; body: string }> =>
  rawRequest(env.url, `${head}\r\nHost: gateway.example\r\nConnection: close\r\n${body === "" ? "" : `Content-Length: ${Buffer.byteLength(body)}\r\n`}\r\n${body}`);
/** Sends a request head only and returns what arrives within a second (the body is never sent). */
async function exchangeHead(head: string): Promise<string> {
  const { connect } = await import("node:net");
  const { hostname, port } = new URL(env.url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let data = "";
    socket.on("data", (chunk: Buffer) => (data += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, 1000);
    socket.write(head, "latin1");
  });
}
const reasonOf = (body: string): string | undefined => {
  try {
    return (JSON.parse(body) as { error?: { reason?: string } }).error?.reason;
  } catch {
    return undefined;
  }
};

t.test("method-override headers never change the method that is authorized or executed", async (t) => {
  // Class: verb tampering through method overrides (Express method-override, Rack::MethodOverride, Symfony _method,
  // Spring HiddenHttpMethodFilter). The header is stripped, the request is judged and forwarded by its real method.
  for (const header of ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "x_http_method_override"]) {
    await env.clearReceived();
    const denied = await raw(`POST /api/products HTTP/1.1\r\n${header}: GET`);
    t.equal(denied.status, 403, `POST /api/products + ${header}: GET is still a POST (unmapped)`);
    t.equal(reasonOf(denied.body), "ENDPOINT_NOT_MAPPED");
    const read = await raw(`GET /api/products HTTP/1.1\r\n${header}: DELETE`);
    t.equal(read.status, 200);
    const [seen] = await env.received();
    t.equal(seen?.method, "GET", `${header}: executed as GET`);
    t.notOk(Object.keys(seen?.headers ?? {}).some((h) => /method/i.test(h)), `${header}: not forwarded`);
  }
});

t.test("_method and override parameters in the query or a form body are refused", async (t) => {
  const auth = `Authorization: Bearer ${user.token}`;
  await env.clearReceived();
  for (const query of ["_method=DELETE", "_METHOD=delete", "%5fmethod=PUT", "a=1&x-http-method-override=DELETE", "X_HTTP_METHOD=PATCH"]) {
    const response = await raw(`POST /api/orders?${query} HTTP/1.1\r\n${auth}\r\nContent-Type: application/json`, "{}");
    t.equal(response.status, 400, `?${query}: 400`);
    t.equal(reasonOf(response.body), "METHOD_OVERRIDE");
  }
  const form = await raw(`POST /api/orders HTTP/1.1\r\n${auth}\r\nContent-Type: application/x-www-form-urlencoded`, "productId=prd_1&_method=DELETE");
  t.equal(form.status, 400, "an urlencoded body with _method: 400");
  t.equal(reasonOf(form.body), "METHOD_OVERRIDE");
  t.same(await env.received(), [], "nothing reached the upstream");
  t.equal((await raw("GET /api/products?method=list&_methodical=1 HTTP/1.1")).status, 200, "look-alike names are fine");
});

t.test("HEAD is judged by the GET rules; unknown, lowercase and TRACE-like methods never reach the upstream", async (t) => {
  await env.clearReceived();
  t.equal((await raw("HEAD /api/inventory HTTP/1.1")).status, 401, "HEAD of a protected GET endpoint: 401, like GET");
  t.equal((await raw("HEAD /api/products HTTP/1.1")).status, 200);
  t.same((await env.received()).map((r) => r.method), ["HEAD"], "HEAD forwarded as HEAD");
  await env.clearReceived();
  // CVE-2004-2320 (Cross-Site Tracing) and verb tampering with methods a policy never names.
  for (const method of ["TRACE", "TRACK", "PROPFIND", "get", "Get", "FOO", "CONNECT"]) {
    const response = await raw(`${method} /api/products HTTP/1.1`).catch(() => ({ status: 0, headers: "", body: "" }));
    t.ok([400, 405].includes(response.status), `${method}: ${response.status}`);
  }
  t.same(await env.received(), [], "none was forwarded");
});

t.test("a CORS preflight is just another method: unmapped, denied, not forwarded", async (t) => {
  await env.clearReceived();
  const preflight = await raw("OPTIONS /api/orders HTTP/1.1\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization");
  t.equal(preflight.status, 403);
  t.equal(reasonOf(preflight.body), "ENDPOINT_NOT_MAPPED");
  t.notMatch(preflight.headers, /access-control-allow/i, "no CORS grant");
  t.same(await env.received(), []);
});

t.test("internal-routing and health-check headers grant nothing", async (t) => {
  await env.clearReceived();
  // CVE-2025-29927 (Next.js): x-middleware-subrequest skipped the middleware that enforced auth.
  const subrequest = await raw("GET /api/inventory HTTP/1.1\r\nx-middleware-subrequest: middleware:middleware:middleware:middleware:middleware");
  t.equal(subrequest.status, 401, "x-middleware-subrequest: still 401");
  // Health-check user agents that some gateways let through unauthenticated.
  for (const agent of ["kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0", "Consul Health Check"]) {
    t.equal((await raw(`GET /api/inventory HTTP/1.1\r\nUser-Agent: ${agent}`)).status, 401, `${agent}: 401`);
  }
  // CVE-2018-14773 (Symfony): X-Original-URL / X-Rewrite-URL overrode the routed path.
  for (const header of ["X-Original-URL: /api/admin/users", "X-Rewrite-URL: /api/admin/users", "X-Forwarded-Prefix: /api/admin", "X-Forwarded-Host: admin.internal"]) {
    t.equal((await raw(`GET /api/products HTTP/1.1\r\n${header}`)).status, 200, `${header}: judged as /api/products`);
  }
  const received = await env.received();
  t.equal(received.length, 4);
  for (const r of received) {
    t.equal(r.url, "/api/products");
    t.notOk(["x-original-url", "x-rewrite-url", "x-forwarded-prefix", "x-forwarded-host", "x-middleware-subrequest"].some((h) => h in r.headers), "routing headers stripped");
  }
});

t.test("hop-by-hop abuse: none of it causes a 500 or carries a header upstream", async (t) => {
  const cases = [
    // Hop-by-hop header stripping abuse (cf. the 2019 "abusing HTTP hop-by-hop request headers" research): listing an
    // identity header in Connection must not make the gateway drop its own identity headers.
    "Connection: x-gerbang-user, x-gerbang-roles, x-gerbang-assertion\r\nX-Gerbang-User: admin",
    "Connection: keep-alive, authorization",
    "Upgrade: websocket\r\nConnection: Upgrade",
    // CVE-2022-41721 (Go h2c): an h2c upgrade through a proxy smuggled requests past it.
    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings",
    "Keep-Alive: timeout=1, max=1",
    "Proxy-Connection: keep-alive",
    "TE: trailers",
  ];
  for (const extra of cases) {
    await env.clearReceived();
    const response = await rawRequest(env.url, `GET /api/products HTTP/1.1\r\nHost: gateway.example\r\n${extra}\r\n\r\n`).catch(() => ({ status: 0, headers: "", body: "" }));
    t.ok(response.status === 200 || response.status === 400, `${extra.split("\r\n")[0]}: ${response.status}, never 500`);
    for (const r of await env.received()) {
      t.equal(r.headers["x-gerbang-roles"], "anonymous", `${extra.split("\r\n")[0]}: the gateway's identity headers are there`);
      t.equal(r.headers["x-gerbang-user"], undefined, "no client-chosen user");
      t.notOk(["upgrade", "keep-alive", "proxy-connection", "te", "http2-settings"].some((h) => h in r.headers), "hop-by-hop headers not forwarded");
    }
  }
  // Expect: 100-continue: a request the gateway refuses is answered without asking for the body
  // (Node would send 100 Continue on its own); an allowed one gets 100 and then its answer.
  const refused = await exchangeHead("POST /api/orders HTTP/1.1\r\nHost: gateway.example\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n");
  t.match(refused, /^HTTP\/1\.1 401 /, "a refused request: 401 straight away, no 100 Continue");
  const allowed = await exchangeHead(`POST /api/shops HTTP/1.1\r\nHost: gateway.example\r\nAuthorization: Bearer ${user.token}\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n`);
  t.match(allowed, /^HTTP\/1\.1 100 Continue/, "an allowed request is asked for its body");
  t.equal((await rawRequest(env.url, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).status, 200, "the gateway stays healthy");
});
