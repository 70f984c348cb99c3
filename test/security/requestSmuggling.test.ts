// Bypass regression suite, request smuggling (issue 4): raw bytes over a socket to a real gateway
// process in front of the demo upstream, which records exactly what it received. Each case names
// the published advisory it models. The gateway must refuse ambiguous framing with 400 before
// anything is forwarded, and pipelined requests must never lend one caller's identity to another.
import t from "tap";
import { connect } from "node:net";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv } from "../helpers/gatewayEnv.ts";
import { rawRequest } from "../helpers/rawHttp.ts";

const pgMissing = await serviceGate("postgres");
const env: GatewayEnv = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());

/** Writes `bytes` in one go and collects everything the gateway sends until it closes or goes quiet. */
function exchange(bytes: string, quietMs = 1500): Promise<string> {
  const { hostname, port } = new URL(env.url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let data = "";
    let timer = setTimeout(() => socket.destroy(), quietMs);
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), quietMs);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.on("error", () => undefined);
    socket.write(bytes, "latin1");
  });
}
const statuses = (responses: string): number[] => [...responses.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

// Every case smuggles a second request for a path nobody may reach; none may arrive upstream.
const SMUGGLED = "GET /api/admin/users HTTP/1.1\r\nHost: x\r\n\r\n";
const framing: Array<[string, string]> = [
  // CVE-2019-18277 (HAProxy), CVE-2020-7238 (Netty): Content-Length and Transfer-Encoding together.
  ["Content-Length with Transfer-Encoding", `POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  // CVE-2022-32215 (Node.js llhttp): duplicate, disagreeing Content-Length.
  ["duplicate Content-Length", `POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  // CVE-2021-22959 (Node.js llhttp): a space before the colon of Transfer-Encoding.
  ["Transfer-Encoding with a space before the colon", `POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  // CVE-2022-32213 / CVE-2022-32214 (Node.js llhttp): obfuscated Transfer-Encoding values and bare LF line ends.
  ["Transfer-Encoding: xchunked", `POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["Transfer-Encoding: chunked, identity", `POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["Transfer-Encoding with a bare LF", `POST /api/orders HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  // CVE-2019-18277 (HAProxy): a vertical tab before the value.
  ["Transfer-Encoding with a vertical tab", `POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  // CVE-2023-25725 (HAProxy): an empty header name.
  ["an empty header name", `POST /api/orders HTTP/1.1\r\nHost: x\r\n: x\r\nContent-Length: 0\r\n\r\n${SMUGGLED}`],
  // CVE-2021-22960 (Node.js llhttp): chunk extensions with raw control characters.
  ["a chunk extension with a bare CR", `POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0;a=\rb\r\n\r\n${SMUGGLED}`],
];

t.test("ambiguous message framing is refused and nothing is smuggled upstream", async (t) => {
  for (const [name, bytes] of framing) {
    await env.clearReceived();
    const responses = await exchange(bytes);
    const [first] = statuses(responses);
    t.equal(first, 400, `${name}: 400`);
    t.notOk(statuses(responses).includes(200), `${name}: no second answer for the smuggled request`);
    const received = await env.received();
    t.same(received.map((r) => r.url), [], `${name}: the upstream received nothing`);
  }
});

t.test("pipelined requests keep their own identities on the way upstream", async (t) => {
  // Class: identity bleed through connection reuse (a gateway that caches the principal per
  // connection, or an upstream pool that mixes up responses): each request must be authenticated
  // and forwarded on its own, and each answer must be its own request's.
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  await env.clearReceived();
  const request = (auth: string): string => `GET /api/products HTTP/1.1\r\nHost: x\r\n${auth}\r\n`;
  const responses = await exchange(
    request(`Authorization: Bearer ${user.token}\r\n`) + request("") + request(`Authorization: Bearer ${sales.token}\r\n`) + request(`Authorization: Bearer not-a-valid-token-${"x".repeat(20)}\r\n`) + request(""),
  );
  t.same(statuses(responses), [200, 200, 200, 401, 200], "each pipelined request answered on its own");
  // The demo upstream echoes the identity it received; responses come back in request order.
  const echoed = responses
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .map((r) => r.slice(r.indexOf("\r\n\r\n") + 4))
    .map((body) => (JSON.parse(body) as { gerbang?: { user: string | null; roles: string[] }; error?: { code: string } }))
    .map((b) => (b.gerbang === undefined ? b.error?.code : [b.gerbang.user, b.gerbang.roles.join(",")]));
  t.same(echoed, [[user.userId, "user"], [null, "anonymous"], [sales.userId, "sales"], "INVALID_CREDENTIALS", [null, "anonymous"]], "every answer carries its own request's identity");
  const seen = (await env.received()).map((r) => `${r.headers["x-gerbang-user"] ?? "-"}:${r.headers["x-gerbang-roles"]}`).sort();
  t.same(seen, [`${sales.userId}:sales`, `${user.userId}:user`, "-:anonymous", "-:anonymous"].sort(), "the upstream saw each caller once and nothing for the refused one");
});

t.test("a request with a body the gateway refuses does not leave the rest of the body to be read as a request", async (t) => {
  // CVE-2022-22720 (Apache httpd): a refused request whose body is not consumed lets that body be
  // parsed as the next request on the connection.
  await env.clearReceived();
  const body = SMUGGLED;
  const responses = await exchange(`POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  t.equal(statuses(responses)[0], 401, "anonymous order: 401");
  t.equal(statuses(responses).length, 1, "the body was not answered as a second request");
  t.same((await env.received()).map((r) => r.url), [], "nothing reached the upstream");
  const after = await rawRequest(env.url, "GET /api/products HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  t.equal(after.status, 200, "the gateway is fine afterwards");
});
