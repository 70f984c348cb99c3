// Forwarding against real processes: the canonical path reaches the upstream byte for byte, bad
// targets never leave the gateway, limits and upstream failures answer with catalogue errors,
// and SIGTERM drains in-flight requests.
import t from "tap";
import { fileURLToPath } from "node:url";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { freePort } from "../helpers/processes.ts";
import { rawRequest } from "../helpers/rawHttp.ts";
import { startRecordingUpstream } from "../helpers/recordingUpstream.ts";

const pgMissing = await serviceGate("postgres");
const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());
const deadPort = await freePort();
const env = await startGatewayEnv({
  postgres: pgMissing === false,
  config: {
    policy: { dir: fileURLToPath(new URL("../fixtures/policies", import.meta.url)), version: "probe-1" },
    upstreams: [
      { name: "probe", prefix: "/probe", url: upstream.url, timeoutMs: 5000 },
      { name: "slow", prefix: "/slow", url: upstream.url, timeoutMs: 500 },
      { name: "dead", prefix: "/dead", url: `http://127.0.0.1:${deadPort}`, timeoutMs: 1000 },
    ],
  },
  serverConfig: { bodyLimitBytes: 1024, maxHeaderBytes: 2048 },
});
t.teardown(() => env.close());

const errorOf = (body: string): { code?: string; reason?: string; requestId?: string } => {
  try {
    return (JSON.parse(body) as { error: { code?: string; reason?: string } }).error;
  } catch {
    return {};
  }
};
const get = (target: string, extra = ""): string => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`;

t.test("canonical targets reach the upstream exactly as authorized", async (t) => {
  const cases: Array<[string, string]> = [
    ["/probe/a", "/probe/a"],
    ["//probe//a///b", "/probe/a/b"],
    ["/probe/%41%7e", "/probe/A~"],
    ["/probe/%c3%a9", "/probe/%C3%A9"],
    ['/probe/"quoted"', "/probe/%22quoted%22"],
    ["/probe/a?x=/../admin&y=%2F", "/probe/a?x=/../admin&y=%2F"],
  ];
  for (const [target, forwarded] of cases) {
    upstream.received.length = 0;
    const response = await rawRequest(env.url, get(target));
    t.equal(response.status, 200, `${target} → 200`);
    t.equal(upstream.received.length, 1, `${target}: one request upstream`);
    t.equal(upstream.received[0]?.url, forwarded, `${target} forwarded as ${forwarded}`);
  }
});

t.test("targets that cannot be normalized safely are rejected before anything is forwarded", async (t) => {
  const cases: Array<[string, string]> = [
    ["/probe/../admin", "DOT_SEGMENT"],
    ["/probe/%2e%2e/admin", "DOT_SEGMENT"],
    ["/probe/%252e%252e/admin", "DOUBLE_ENCODING"],
    ["/probe/a%2fb", "ENCODED_SEPARATOR"],
    ["/probe/a%5Cb", "ENCODED_SEPARATOR"],
    ["/probe/a\\b", "BACKSLASH"],
    ["/probe/a;jsessionid=1", "PATH_PARAMETER"],
    ["/probe/a%00", "CONTROL_CHARACTER"],
    ["/probe/%zz", "INVALID_PERCENT_ENCODING"],
    ["/probe/%C0%AE", "INVALID_UTF8"],
    ["/probe/..a", "DOT_SEGMENT"],
    ["/probe/a../b", "DOT_SEGMENT"],
    [`http://127.0.0.1:${new URL(env.url).port}/probe/a`, "ABSOLUTE_FORM"],
    ["http://evil.example/probe/a", "ABSOLUTE_FORM"],
    ["*", "ASTERISK_FORM"],
  ];
  for (const [target, reason] of cases) {
    upstream.received.length = 0;
    const response = await rawRequest(env.url, get(target));
    t.equal(response.status, 400, `${target} → 400`);
    t.match(errorOf(response.body), { code: "BAD_REQUEST_TARGET", reason, requestId: /^[0-9a-f-]{36}$/ }, `${target}: ${reason}`);
    t.equal(upstream.received.length, 0, `${target}: nothing forwarded`);
  }
});

t.test("methods the gateway never forwards, and every method on /api/auth, answer 405", async (t) => {
  for (const request of ["TRACE /probe/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "PROPFIND /probe/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "DELETE /api/auth/sign-out HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]) {
    upstream.received.length = 0;
    const response = await rawRequest(env.url, request);
    t.equal(response.status, 405, request.split(" ").slice(0, 2).join(" "));
    t.equal(errorOf(response.body).code, "METHOD_NOT_ALLOWED");
    t.equal(upstream.received.length, 0);
  }
});

t.test("a request without Host, and CONNECT, get catalogue JSON too", async (t) => {
  upstream.received.length = 0;
  const noHost = await rawRequest(env.url, "GET /probe/a HTTP/1.1\r\nConnection: close\r\n\r\n");
  t.equal(noHost.status, 400);
  t.same([errorOf(noHost.body).code, errorOf(noHost.body).reason], ["MALFORMED_REQUEST", "MISSING_HOST"]);
  const http10 = await rawRequest(env.url, "GET /probe/a HTTP/1.0\r\n\r\n");
  t.equal(http10.status, 200, "HTTP/1.0 has no Host requirement");
  const connect = await rawRequest(env.url, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n");
  t.equal(connect.status, 405);
  t.equal(errorOf(connect.body).code, "METHOD_NOT_ALLOWED");
  t.equal(upstream.received.length, 1, "only the HTTP/1.0 request was forwarded");
});

t.test("a request no rule could allow is refused before its body is read", async (t) => {
  upstream.received.length = 0;
  // The body never arrives: an answer proves the gateway did not wait for it.
  const unmapped = await rawRequest(env.url, "PUT /probe/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{", 3000);
  t.equal(unmapped.status, 403);
  t.same([errorOf(unmapped.body).code, errorOf(unmapped.body).reason], ["FORBIDDEN", "ENDPOINT_NOT_MAPPED"]);
  t.equal(upstream.received.length, 0);
});

t.test("client headers cannot choose the upstream or the identity", async (t) => {
  upstream.received.length = 0;
  const response = await rawRequest(
    env.url,
    get("/probe/h", "X-Forwarded-Host: evil.example\r\nX_Gerbang_User: admin\r\nx-gerbang-roles: admin\r\nX-Original-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nConnection: x-gerbang-auth\r\nForwarded: for=1.2.3.4\r\n"),
  );
  t.equal(response.status, 200);
  const headers = upstream.received[0]?.headers ?? {};
  t.equal(headers.host, new URL(upstream.url).host, "the upstream comes from configuration");
  t.equal(headers["x_gerbang_user"], undefined);
  t.equal(headers["x-gerbang-user"], undefined, "anonymous has no user header");
  t.equal(headers["x-gerbang-roles"], "anonymous");
  t.equal(headers["x-gerbang-auth"], "anonymous");
  t.equal(headers["x-original-url"], undefined);
  t.equal(headers["x-http-method-override"], undefined);
  t.equal(headers.forwarded, undefined);
  t.equal(upstream.received[0]?.method, "GET");
});

t.test("bodies are forwarded byte for byte, within the limit", async (t) => {
  upstream.received.length = 0;
  const body = '{"b":1,  "a":"x"}';
  const ok = await fetch(`${env.url}/probe/echo`, { method: "POST", headers: { "content-type": "application/json" }, body });
  t.equal(ok.status, 200);
  t.equal(upstream.received[0]?.body, body, "the exact JSON text, not a re-serialization");
  for (const type of ["application/json", "text/plain", "application/octet-stream"]) {
    const big = await fetch(`${env.url}/probe/echo`, { method: "POST", headers: { "content-type": type }, body: "x".repeat(4096) });
    t.equal(big.status, 413, `${type}: 413`);
    t.equal(errorOf(await big.text()).code, "PAYLOAD_TOO_LARGE");
  }
  const headers = await rawRequest(env.url, get("/probe/a", `X-Big: ${"y".repeat(4096)}\r\n`));
  t.equal(headers.status, 431);
  t.equal(errorOf(headers.body).code, "HEADERS_TOO_LARGE");
});

t.test("upstream failures: 504 on timeout, 502 when unreachable, gateway stays healthy", async (t) => {
  const started = Date.now();
  const slow = await fetch(`${env.url}/slow/3000`);
  t.equal(slow.status, 504);
  t.equal(errorOf(await slow.text()).code, "UPSTREAM_TIMEOUT");
  t.ok(Date.now() - started < 2500, "answered near the configured timeout");
  const dead = await fetch(`${env.url}/dead/x`);
  t.equal(dead.status, 502);
  const body = await dead.text();
  t.equal(errorOf(body).code, "UPSTREAM_UNREACHABLE");
  t.notMatch(body, /ECONNREFUSED|127\.0\.0\.1|stack/i, "no internals leak");
  t.equal((await fetch(`${env.url}/healthz`)).status, 200);
  const unknown = await fetch(`${env.url}/nowhere`);
  t.equal(unknown.status, 404);
  t.equal(errorOf(await unknown.text()).code, "ROUTE_NOT_FOUND");
});

t.test("SIGTERM finishes in-flight requests and exits 0", async (t) => {
  const inFlight = fetch(`${env.url}/slow/400`);
  await new Promise((r) => setTimeout(r, 150));
  const exit = env.gateway.stop();
  const response = await inFlight;
  t.equal(response.status, 200, "the in-flight request completed");
  t.equal(await exit, 0, "clean exit");
});
