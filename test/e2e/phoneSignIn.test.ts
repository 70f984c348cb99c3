// Issue 18, phone OTP: sign-up and sign-in by phone end to end through the SMS outbox (and through
// Twilio's API, faked by the test), numbers normalised to E.164, codes stored hashed, five attempts
// per code, expiry, the resend cool-down, SMS pumping throttled per number and per address, the same
// answer in the same time for registered and unknown numbers, and the erasure of a phone user.
import t from "tap";
import type { Test } from "tap";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { serviceGate } from "../helpers/services.ts";
import { GENEROUS_LIMITS, startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { errorOf } from "../helpers/catalogueError.ts";
import { eventually } from "../helpers/eventually.ts";
import { cliOf, databaseOf } from "../helpers/envAccess.ts";

const skip = (await serviceGate("postgres")) || (await serviceGate("redis"));
if (skip !== false) throw new Error(`PostgreSQL and Redis are required: ${skip}`);
// The deployment's hourly send budget is counted per clock hour: this file's sends must fall in one.
const intoHour = Date.now() % 3_600_000;
if (intoHour > 3_600_000 - 180_000) await new Promise((r) => setTimeout(r, 3_600_000 - intoHour + 1000));
const SEND_BUDGET = 120;
const env = await startGatewayEnv({ postgres: true, config: { auth: { phone: { resendCooldownSec: 0, maxSendsPerHour: SEND_BUDGET } } } });
t.teardown(() => env.close());
const db = await databaseOf(env);
t.teardown(() => db.end());
const cli = cliOf(env);

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
  ms: number;
}
async function post(base: string, path: string, body: unknown): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(`${base}/api/auth${path}`, { method: "POST", headers: { "content-type": "application/json", origin: base }, body: JSON.stringify(body) });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, text, headers: response.headers, ms: performance.now() - started };
}

/** The newest code the outbox holds for a number, read as an operator would. */
async function codeFor(to: string): Promise<string> {
  const run = await cli("outbox", "list", "--to", to, "--json");
  if (run.code !== 0) throw new Error(run.stderr);
  const [newest] = JSON.parse(run.stdout) as Array<{ channel: string; text: string }>;
  const code = /\b(\d{6})\b/.exec(newest?.text ?? "")?.[1];
  if (code === undefined) throw new Error(`no code for ${to}: ${run.stdout}`);
  return code;
}
const wrong = (code: string): string => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

const NUMBER = "+6281234567890";
const codes: string[] = [];
let phoneToken = "";

t.test("sign-up and sign-in by phone through the outbox; any spelling of the number is the same account", async (t) => {
  const sent = await post(env.url, "/phone-number/send-otp", { phoneNumber: "+62 812-3456-7890" });
  t.equal(sent.status, 200, sent.text);
  const code = await codeFor("0812 3456 7890");
  codes.push(code);
  const stored = await db.query<{ value: string }>("SELECT value FROM verification WHERE identifier = $1", [`phone-number-otp-${NUMBER}`]);
  t.equal(stored.rowCount, 1, "one code, under the E.164 number");
  t.match(stored.rows[0]?.value, /^h:[A-Za-z0-9_-]{43}:0$/, "stored as an HMAC with its attempt count");
  t.notOk(stored.rows[0]?.value.includes(code), "never the code itself");

  const verified = await post(env.url, "/phone-number/verify", { phoneNumber: NUMBER, code });
  t.equal(verified.status, 200, verified.text);
  const token = verified.headers.get("set-auth-token") ?? "";
  t.ok(token.length > 0, "a session");
  const user = verified.body.user as { id: string; phoneNumber: string; phoneNumberVerified: boolean };
  t.match(user, { phoneNumber: NUMBER, phoneNumberVerified: true });
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${token}` } })).status, 200, "the new user's session works through the gateway");
  t.equal((await post(env.url, "/phone-number/verify", { phoneNumber: NUMBER, code })).status, 400, "a code works once");

  // Signing in again, the number spelt the national way.
  t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: "081234567890" })).status, 200);
  const again = await codeFor(NUMBER);
  codes.push(again);
  const signedIn = await post(env.url, "/phone-number/verify", { phoneNumber: "0812 3456 7890", code: again });
  t.equal(signedIn.status, 200, signedIn.text);
  t.equal((signedIn.body.user as { id: string }).id, user.id, "the same user");
  phoneToken = signedIn.headers.get("set-auth-token") ?? "";
  t.equal((await db.query(`SELECT 1 FROM "user" WHERE "phoneNumber" = $1`, [NUMBER])).rowCount, 1, "one account for the number");
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE action = 'auth.otp_verified' AND allowed AND principal_id = $1", [user.id])).rowCount ?? 0) >= 2), "verifications audited with the user");
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM audit_event WHERE action = 'auth.otp_sent'")).rowCount ?? 0) >= 2), "sends audited");
});

t.test("a phone code does not stand in for a user's chosen second factor", async (t) => {
  await db.query(`UPDATE "user" SET "twoFactorEnabled" = true WHERE "phoneNumber" = $1`, [NUMBER]);
  t.teardown(() => db.query(`UPDATE "user" SET "twoFactorEnabled" = false WHERE "phoneNumber" = $1`, [NUMBER]));
  const sessions = async (): Promise<number> => Number((await db.query(`SELECT count(*) AS n FROM session s JOIN "user" u ON u.id = s."userId" WHERE u."phoneNumber" = $1`, [NUMBER])).rows[0]?.n);
  const before = await sessions();
  t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: NUMBER })).status, 200);
  const code = await codeFor(NUMBER);
  codes.push(code);
  const refused = await post(env.url, "/phone-number/verify", { phoneNumber: NUMBER, code });
  t.equal(refused.status, 403, refused.text);
  t.match(refused.body, { code: "TWO_FACTOR_REQUIRED" });
  t.notOk(refused.headers.get("set-auth-token"), "no session token");
  t.equal(await sessions(), before, "no session");
});

t.test("a number cannot be claimed without its code: not at sign-up, not by update-user", async (t) => {
  const victim = "+6281377778888";
  const email = `claimer-${process.pid}@example.test`;
  const placeholder = await post(env.url, "/sign-up/email", { email: "phone-6281377778888@phone.invalid", password: "claimer-password-1", name: "Claimer" });
  t.equal(placeholder.status, 400, "the placeholder address of a phone sign-up cannot be taken");
  t.match(errorOf(placeholder.text), { code: "MALFORMED_REQUEST", reason: "RESERVED_EMAIL" });
  const claim = await post(env.url, "/sign-up/email", { email, password: "claimer-password-1", name: "Claimer", phoneNumber: victim });
  t.equal(claim.status, 400, "a sign-up may not name a number");
  t.match(claim.body, { code: "PHONE_NUMBER_CANNOT_BE_SET" });
  t.equal((await post(env.url, "/sign-up/email", { email, password: "claimer-password-1", name: "Claimer" })).status, 200);
  await db.query(`UPDATE "user" SET "emailVerified" = true WHERE email = $1`, [email]);
  const claimer = await post(env.url, "/sign-in/email", { email, password: "claimer-password-1" });
  const token = claimer.headers.get("set-auth-token") ?? "";
  const update = await fetch(`${env.url}/api/auth/update-user`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", origin: env.url }, body: JSON.stringify({ phoneNumber: victim, name: "Renamed" }) });
  t.equal(update.status, 400, "nor an update-user");
  const [row] = (await db.query(`SELECT name, "phoneNumber", "phoneNumberVerified" FROM "user" WHERE email = $1`, [email])).rows;
  t.match(row, { name: "Claimer", phoneNumber: null, phoneNumberVerified: false }, "nothing was written");
  // The number's owner signs in by phone: a new account of their own, not the claimer's.
  t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: victim })).status, 200);
  const code = await codeFor(victim);
  codes.push(code);
  const owner = await post(env.url, "/phone-number/verify", { phoneNumber: victim, code });
  t.equal(owner.status, 200, owner.text);
  t.not((owner.body.user as { email?: string }).email, email, "signed in to their own account");
});

t.test("malformed numbers: 400 with libphonenumber's reason, nothing sent", async (t) => {
  const before = Number((await db.query("SELECT count(*) AS n FROM sms_outbox")).rows[0]?.n);
  for (const [raw, reason] of [["12", "NOT_VALID"], ["not a number", "NOT_A_NUMBER"], ["+999 123 456", "INVALID_COUNTRY"], ["+62 21 123", "NOT_VALID"], ["+62 812 3456 7890 ext. 12", "HAS_EXTENSION"], ["+6281234567890123456789", "TOO_LONG"], ["+1 202 555 0143", "COUNTRY_NOT_ALLOWED"], ["+62 21 2345 6789", "NOT_MOBILE"], ["0800 1234 567", "NOT_MOBILE"]] as const) {
    const answer = await post(env.url, "/phone-number/send-otp", { phoneNumber: raw });
    t.equal(answer.status, 400, raw);
    t.match(errorOf(answer.text), { code: "INVALID_PHONE_NUMBER", reason }, raw);
  }
  t.equal((await post(env.url, "/phone-number/verify", { phoneNumber: "abc", code: "123456" })).status, 400, "verification too");
  t.equal(Number((await db.query("SELECT count(*) AS n FROM sms_outbox")).rows[0]?.n), before, "no message");
});

t.test("five wrong codes kill the code; an expired code is refused", async (t) => {
  const number = "+6281311112222";
  t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: number })).status, 200);
  const code = await codeFor(number);
  codes.push(code);
  for (let i = 1; i <= 5; i++) {
    const attempt = await post(env.url, "/phone-number/verify", { phoneNumber: number, code: wrong(code) });
    t.equal(attempt.status, 400, `wrong code ${i}`);
    t.match(attempt.body, { code: "INVALID_OTP" });
  }
  const late = await post(env.url, "/phone-number/verify", { phoneNumber: number, code });
  t.not(late.status, 200, "the right code after five wrong ones does not sign in");
  t.match(late.body, { code: "OTP_NOT_FOUND" }, "the code is dead");
  t.equal((await db.query(`SELECT 1 FROM "user" WHERE "phoneNumber" = $1`, [number])).rowCount, 0, "no account was made");

  // Parallel guesses share no attempt: ten at once against a fresh code, at most five are counted as tries.
  t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: number })).status, 200);
  const fresh = await codeFor(number);
  codes.push(fresh);
  const guesses = await Promise.all(Array.from({ length: 10 }, () => post(env.url, "/phone-number/verify", { phoneNumber: number, code: wrong(fresh) })));
  t.equal(guesses.filter((g) => g.status === 200).length, 0);
  t.equal((await post(env.url, "/phone-number/verify", { phoneNumber: number, code: fresh })).status, 400, "ten parallel wrong guesses used up the code");

  t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: number })).status, 200);
  const expiring = await codeFor(number);
  codes.push(expiring);
  await db.query(`UPDATE verification SET "expiresAt" = now() - interval '1 second' WHERE identifier = $1`, [`phone-number-otp-${number}`]);
  const expired = await post(env.url, "/phone-number/verify", { phoneNumber: number, code: expiring });
  t.equal(expired.status, 400);
  t.match(expired.body, { code: "OTP_EXPIRED" });
  const lifetime = await (async () => {
    t.equal((await post(env.url, "/phone-number/send-otp", { phoneNumber: number })).status, 200);
    codes.push(await codeFor(number));
    const [row] = (await db.query<{ s: number }>(`SELECT EXTRACT(EPOCH FROM ("expiresAt" - "createdAt"))::int AS s FROM verification WHERE identifier = $1 ORDER BY "createdAt" DESC LIMIT 1`, [`phone-number-otp-${number}`])).rows;
    return row?.s;
  })();
  t.equal(lifetime, 300, "codes live 5 minutes");
});

t.test("password reset by phone: a hashed reset code, five attempts, then a password sign-in by phone", async (t) => {
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${phoneToken}` } })).status, 200, "a session in use (and cached)");
  t.equal((await post(env.url, "/phone-number/request-password-reset", { phoneNumber: "0812-3456-7890" })).status, 200);
  // The code goes out in the background (its send time must not tell registered numbers apart).
  t.ok(await eventually(async () => ((await db.query("SELECT 1 FROM sms_outbox WHERE \"to\" = $1 AND kind = 'reset-password-otp'", [NUMBER])).rowCount ?? 0) > 0, 5000));
  const code = await codeFor(NUMBER);
  codes.push(code);
  const [stored] = (await db.query<{ value: string }>("SELECT value FROM verification WHERE identifier = $1", [`phone-number-reset-${NUMBER}`])).rows;
  t.match(stored?.value, /^h:[A-Za-z0-9_-]{43}:0$/, "stored as an HMAC");
  t.equal((await post(env.url, "/phone-number/verify", { phoneNumber: NUMBER, code })).status, 400, "a reset code is not a sign-in code");
  const bad = await post(env.url, "/phone-number/reset-password", { phoneNumber: NUMBER, otp: wrong(code), newPassword: "phone-user-password-1" });
  t.equal(bad.status, 400, "a wrong reset code");
  const reset = await post(env.url, "/phone-number/reset-password", { phoneNumber: NUMBER, otp: code, newPassword: "phone-user-password-1" });
  t.equal(reset.status, 200, reset.text);
  t.equal((await fetch(`${env.url}/api/orders`, { headers: { authorization: `Bearer ${phoneToken}` } })).status, 401, "the reset ended the session at once, cache or not");
  const signIn = await post(env.url, "/sign-in/phone-number", { phoneNumber: "+62 812 3456 7890", password: "phone-user-password-1" });
  t.equal(signIn.status, 200, signIn.text);
  t.equal((await post(env.url, "/phone-number/reset-password", { phoneNumber: NUMBER, otp: code, newPassword: "phone-user-password-2" })).status, 400, "a reset code works once");
});

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

t.test("a registered and an unknown number get the same answer in the same time", async (t: Test) => {
  let fresh = 0;
  const unknown = (): string => `+62815${String(process.pid % 1000).padStart(3, "0")}${String(++fresh).padStart(4, "0")}`;
  const known = await post(env.url, "/phone-number/send-otp", { phoneNumber: NUMBER });
  const other = await post(env.url, "/phone-number/send-otp", { phoneNumber: unknown() });
  t.equal(known.status, other.status);
  t.equal(known.text, other.text, "byte-for-byte the same body");
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 20; i++) {
    a.push((await post(env.url, "/phone-number/send-otp", { phoneNumber: NUMBER })).ms);
    b.push((await post(env.url, "/phone-number/send-otp", { phoneNumber: unknown() })).ms);
  }
  const [ma, mb] = [median(a), median(b)];
  const within = Math.max(2.5, 0.02 * Math.max(ma, mb));
  t.ok(Math.abs(ma - mb) <= within, `medians ${ma.toFixed(1)} ms (registered) and ${mb.toFixed(1)} ms (unknown) within ${within.toFixed(1)} ms`);
  codes.push(await codeFor(NUMBER));
});

t.test("the deployment's hourly send budget holds whatever the numbers and addresses", async (t) => {
  // Every send so far went out (the outbox has a row each); the budget counted each.
  let fresh = 0;
  let refused: Answer | null = null;
  for (let i = 0; i < SEND_BUDGET + 5 && refused === null; i++) {
    const answer = await post(env.url, "/phone-number/send-otp", { phoneNumber: `+62816${String(process.pid % 1000).padStart(3, "0")}${String(++fresh).padStart(4, "0")}` });
    if (answer.status !== 200) refused = answer;
  }
  t.equal(refused?.status, 429);
  t.match(errorOf(refused?.text ?? ""), { code: "RATE_LIMITED", reason: "OTP_GLOBAL" });
  const sent = Number((await db.query("SELECT count(*) AS n FROM sms_outbox")).rows[0]?.n);
  t.equal(sent, SEND_BUDGET, `exactly ${SEND_BUDGET} messages this hour`);
});

t.test("erasure of a phone user leaves neither the number nor its messages", async (t) => {
  const [row] = (await db.query<{ id: string; email: string }>(`SELECT id, email FROM "user" WHERE "phoneNumber" = $1`, [NUMBER])).rows;
  t.ok(row !== undefined);
  t.equal(row?.email, "phone-6281234567890@phone.invalid", "a reserved placeholder address");
  const deleted = await cli("users", "delete", row?.email ?? "", "--grace-days", "0");
  t.equal(deleted.code, 0, deleted.stderr);
  const purged = await cli("users", "purge", "--email", row?.email ?? "");
  t.equal(purged.code, 0, purged.stderr);
  const tables = await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
  const found: string[] = [];
  for (const { table_name: table } of tables.rows) {
    for (const needle of ["6281234567890", ...codes]) {
      const hit = await db.query(`SELECT 1 FROM "${table.replaceAll('"', '""')}" x WHERE row_to_json(x)::text LIKE $1 LIMIT 1`, [`%${needle}%`]);
      if ((hit.rowCount ?? 0) > 0 && (needle === "6281234567890" || table === "audit_event")) found.push(`${table}: ${needle}`);
    }
  }
  t.same(found, [], "the number is in no table, and no code ever reached the audit trail");
});

// Twilio's Messages API as the test's own fake: it checks what a real account would, and can fail.
const received: Array<{ to: string; from: string; body: string }> = [];
let failing = false;
const fake = createServer((request: IncomingMessage, response) => {
  let raw = "";
  request.on("data", (chunk: Buffer) => (raw += chunk.toString()));
  request.on("end", () => {
    const auth = request.headers.authorization ?? "";
    if (request.method !== "POST" || request.url !== "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json") return void response.writeHead(404).end();
    if (auth !== `Basic ${Buffer.from("AC0123456789abcdef:twilio-test-token").toString("base64")}`) return void response.writeHead(401).end('{"code":20003}');
    if (failing) return void response.writeHead(500).end("{}");
    const form = new URLSearchParams(raw);
    received.push({ to: form.get("To") ?? "", from: form.get("From") ?? "", body: form.get("Body") ?? "" });
    response.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ sid: `SM${received.length}`, status: "queued" }));
  });
});
await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
t.teardown(() => new Promise<void>((r) => fake.close(() => r())));
const fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;

t.test("through Twilio: delivery, the resend cool-down, a failing provider, SMS pumping per number and per address", async (t) => {
  // Rate-limit windows are fixed (aligned to the epoch): the sends below must all fall in one.
  const windowMs = 600_000;
  const limits = { max: 3, windowMs };
  const twilioEnv = await startGatewayEnv({
    postgres: true,
    config: {
      auth: { phone: { resendCooldownSec: 2, sms: { transport: "twilio", twilio: { accountSid: "AC0123456789abcdef", authToken: "twilio-test-token", from: "+15005550006", baseUrl: fakeUrl } } } },
      rateLimit: { ...GENEROUS_LIMITS, auth: { ...GENEROUS_LIMITS.auth, otp: { perAccount: limits, perAddress: { max: 6, windowMs } } } },
    },
  });
  t.teardown(() => twilioEnv.close());
  const base = twilioEnv.url;
  const intoWindow = Date.now() % windowMs;
  if (intoWindow > windowMs - 30_000) await new Promise((r) => setTimeout(r, windowMs - intoWindow + 100));
  const first = "+6281322223333";
  const second = "+6281344445555";

  t.equal((await post(base, "/phone-number/send-otp", { phoneNumber: "0813-2222-3333" })).status, 200);
  t.match(received.at(-1), { to: first, from: "+15005550006", body: /^\d{6} is your / }, "Twilio got the E.164 number and the code");
  const code = /^(\d{6})/.exec(received.at(-1)?.body ?? "")?.[1] ?? "";
  const verified = await post(base, "/phone-number/verify", { phoneNumber: first, code });
  t.equal(verified.status, 200, verified.text);

  const soon = await post(base, "/phone-number/send-otp", { phoneNumber: first });
  t.equal(soon.status, 429, "a resend within the cool-down");
  t.match(errorOf(soon.text), { code: "RATE_LIMITED", reason: "OTP_RESEND_COOLDOWN" });
  t.ok(Number(soon.headers.get("retry-after")) >= 1 && Number(soon.headers.get("retry-after")) <= 2, `Retry-After ${soon.headers.get("retry-after")}`);
  t.equal(received.length, 1, "nothing sent");

  failing = true;
  const down = await post(base, "/phone-number/send-otp", { phoneNumber: second });
  t.equal(down.status, 503, "a provider failure is the client's 503, never a success");
  failing = false;
  t.equal((await post(base, "/phone-number/send-otp", { phoneNumber: second })).status, 200, "the failed send did not start a cool-down");
  t.equal(received.at(-1)?.to, second);

  await new Promise((r) => setTimeout(r, 2100));
  t.equal((await post(base, "/phone-number/send-otp", { phoneNumber: first })).status, 200, "after the cool-down");
  await new Promise((r) => setTimeout(r, 2100));
  const pumped = await post(base, "/phone-number/send-otp", { phoneNumber: first });
  t.equal(pumped.status, 429, "a fourth send to one number in the window");
  t.match(errorOf(pumped.text), { reason: "OTP_ACCOUNT" });
  const spread = await post(base, "/phone-number/send-otp", { phoneNumber: "+6281366667777" });
  t.equal(spread.status, 429, "a seventh send from one address, to any number");
  t.match(errorOf(spread.text), { reason: "OTP_ADDRESS" });
  t.equal(received.length, 3, "three messages reached Twilio");
  t.notOk(JSON.stringify(received).includes("twilio-test-token"), "the token is only in the authorization header");
});
