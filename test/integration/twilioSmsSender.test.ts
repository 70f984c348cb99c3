// The Twilio adapter against a local fake of Twilio's Messages API: what it sends, and that every way
// the provider can fail (refusal, nonsense, silence, a redirect) is a failed send, never a success.
import t from "tap";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SmsSendFailed, twilioSmsSender } from "../../src/auth/smsSender.ts";

let answer: (request: IncomingMessage, body: string, response: ServerResponse) => void = () => undefined;
const fake = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk: Buffer) => (body += chunk.toString()));
  request.on("end", () => answer(request, body, response));
});
await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
t.teardown(() => new Promise<void>((r) => fake.close(() => r())));
const baseUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
const sender = twilioSmsSender({ accountSid: "AC42", authToken: "secret-token-1", from: "Gerbang", baseUrl, timeoutMs: 500 });
const message = { to: "+6281234567890", text: "123456 is your code", kind: "sign-in-otp" };

t.test("a send is one form-encoded POST with basic auth", async (t) => {
  let seen: { method?: string; url?: string; auth?: string; type?: string; body?: string } = {};
  answer = (request, body, response) => {
    seen = { method: request.method ?? "", url: request.url ?? "", auth: request.headers.authorization ?? "", type: request.headers["content-type"] ?? "", body };
    response.writeHead(201, { "content-type": "application/json" }).end('{"sid":"SM1","status":"queued"}');
  };
  await sender.send(message);
  t.match(seen, { method: "POST", url: "/2010-04-01/Accounts/AC42/Messages.json", auth: `Basic ${Buffer.from("AC42:secret-token-1").toString("base64")}`, type: /^application\/x-www-form-urlencoded/ });
  t.same(Object.fromEntries(new URLSearchParams(seen.body ?? "")), { To: "+6281234567890", From: "Gerbang", Body: "123456 is your code" });
});

t.test("every failure of the provider is a failed send, and names nothing it answered", async (t) => {
  const cases: Array<[string, (response: ServerResponse) => void]> = [
    ["a refusal", (r) => void r.writeHead(400, { "content-type": "application/json" }).end('{"code":21211,"message":"The To number +6281234567890 is not valid"}')],
    ["bad credentials", (r) => void r.writeHead(401).end()],
    ["a server error", (r) => void r.writeHead(503).end()],
    ["a 201 that is not JSON", (r) => void r.writeHead(201).end("<html>")],
    ["a 201 without a sid", (r) => void r.writeHead(201).end("{}")],
    ["a redirect", (r) => void r.writeHead(302, { location: "http://127.0.0.1:1/" }).end()],
    ["silence past the timeout", () => undefined],
    ["a connection cut", (r) => r.socket?.destroy()],
  ];
  for (const [name, respond] of cases) {
    answer = (_request, _body, response) => respond(response);
    const error = await sender.send(message).then(() => null, (e: unknown) => e);
    t.type(error, SmsSendFailed, name);
    t.notOk(String((error as Error | null)?.message).includes("6281234567890"), `${name}: the number is not in the error`);
  }
});

t.test("an unreachable provider is a failed send", async (t) => {
  const gone = twilioSmsSender({ accountSid: "AC42", authToken: "secret-token-1", from: "Gerbang", baseUrl: "http://127.0.0.1:1", timeoutMs: 500 });
  t.type(await gone.send(message).then(() => null, (e: unknown) => e), SmsSendFailed);
});
