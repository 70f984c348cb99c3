// With transport smtp, verification mail leaves through a real SMTP conversation.
import t from "tap";
import { SMTPServer } from "smtp-server";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { freePort } from "../helpers/processes.ts";

const messages: Array<{ from: string; to: string[]; data: string }> = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  logger: false,
  onData(stream, session, callback) {
    let data = "";
    stream.on("data", (c: Buffer) => (data += c.toString()));
    stream.on("end", () => {
      const from = session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address;
      messages.push({ from, to: session.envelope.rcptTo.map((r) => r.address), data });
      callback();
    });
  },
});
const smtpPort = await freePort();
await new Promise<void>((resolve) => smtp.listen(smtpPort, "127.0.0.1", resolve));
t.teardown(() => new Promise<void>((resolve) => smtp.close(() => resolve())));

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({
  postgres: pgMissing === false,
  config: { auth: { mail: { transport: "smtp", smtpUrl: `smtp://127.0.0.1:${smtpPort}`, from: "Gerbang <auth@gerbang.test>" } } },
});
t.teardown(() => env.close());

t.test("sign-up sends the verification link over SMTP", async (t) => {
  const response = await fetch(`${env.url}/api/auth/sign-up/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ email: "smtp.user@example.com", password: "a long enough password", name: "Smtp User" }),
  });
  t.equal(response.status, 200);
  for (let i = 0; i < 50 && messages.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(messages.length, 1);
  const [mail] = messages;
  t.equal(mail?.from, "auth@gerbang.test");
  t.same(mail?.to, ["smtp.user@example.com"]);
  t.match(mail?.data ?? "", /Subject: Verify your email/);
  t.match((mail?.data ?? "").replace(/=\r\n/g, ""), `${env.url}/api/auth/verify-email?token=`);
});
