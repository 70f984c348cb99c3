// Bypass regression suite, account enumeration (issue 12; CWE-204, CWE-208; OWASP WSTG-IDNT-04):
// sign-up, password reset and sign-in answer an existing and an unknown account with the same
// status and body shape, and in the same time within noise. Timing is compared statistically: many
// alternating samples, medians within a tolerance, no absolute time asserted.
import t from "tap";
import type { Test } from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
const EXISTING = "buyer@demo.gerbang.dev";
// Demo users are seeded right after the gateway listens, sales last: once sales can sign in, the
// existing account exists (a sign-up racing the seeding would create it, or collide with it).
await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");

const post = async (path: string, body: unknown): Promise<{ status: number; json: unknown; ms: number }> => {
  const started = performance.now();
  const response = await fetch(`${env.url}/api/auth${path}`, { method: "POST", headers: { "content-type": "application/json", origin: env.url }, body: JSON.stringify(body) });
  const json: unknown = await response.json();
  return { status: response.status, json, ms: performance.now() - started };
};
/** The body with values replaced by their types: what an observer learns from the shape. */
const shape = (value: unknown): unknown =>
  Array.isArray(value) ? value.map(shape) : typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shape(v)])) : value === null ? "null" : typeof value;
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};
// Routes answered at auth.uniformResponseMs: both sides wait for the same moment, so a few ms apart
// is already a leak (without it, an existing account's reset took about 4 ms longer, a sign-up 5 ms
// less, and a refused sign-in 2-4 ms longer: verifying a password is not quite hashing one).
const UNIFORM = (larger: number): number => Math.max(2.5, 0.02 * larger);
let fresh = 0;
const unknownEmail = (): string => `nobody-${process.pid}-${++fresh}@example.test`;

/** Alternates existing and unknown accounts and compares the medians of their answer times. */
async function sameTime(t: Test, name: string, existing: () => Promise<{ ms: number }>, unknown: () => Promise<{ ms: number }>, tolerance: (larger: number) => number, samples = 30): Promise<void> {
  const a: number[] = [];
  const b: number[] = [];
  await existing();
  await unknown();
  for (let i = 0; i < samples; i++) {
    a.push((await existing()).ms);
    b.push((await unknown()).ms);
  }
  const [ma, mb] = [median(a), median(b)];
  const within = tolerance(Math.max(ma, mb));
  t.ok(Math.abs(ma - mb) <= within, `${name}: medians ${ma.toFixed(1)} ms (existing) and ${mb.toFixed(1)} ms (unknown) within ${within.toFixed(1)} ms`);
}

t.test("sign-up: same status and shape for an existing email; same time", async (t) => {
  const password = "a-long-enough-password";
  const existing = await post("/sign-up/email", { email: EXISTING, password, name: "Someone" });
  const created = await post("/sign-up/email", { email: unknownEmail(), password, name: "Someone" });
  t.equal(existing.status, created.status, `status ${created.status} for both`);
  t.same(shape(existing.json), shape(created.json), "the same fields with the same types");
  t.match(existing.json, { token: null, user: { role: "user", banned: false, emailVerified: false } }, "the made-up user looks like a new one");
  t.match(created.json, { token: null, user: { role: "user", banned: false, emailVerified: false } });
  await sameTime(t, "sign-up", () => post("/sign-up/email", { email: EXISTING, password, name: "Someone" }), () => post("/sign-up/email", { email: unknownEmail(), password, name: "Someone" }), UNIFORM, 20);
});

t.test("password reset: same answer, same time (the mail is queued, not sent inline)", async (t) => {
  const existing = await post("/request-password-reset", { email: EXISTING, redirectTo: "/" });
  const unknown = await post("/request-password-reset", { email: unknownEmail(), redirectTo: "/" });
  t.equal(existing.status, 200);
  t.same(existing.json, unknown.json, "byte-for-byte the same body");
  await sameTime(t, "password reset", () => post("/request-password-reset", { email: EXISTING, redirectTo: "/" }), () => post("/request-password-reset", { email: unknownEmail(), redirectTo: "/" }), UNIFORM);
});

t.test("sign-in with a wrong password: same answer, same time as an unknown account", async (t) => {
  const existing = await post("/sign-in/email", { email: EXISTING, password: "wrong-password-123" });
  const unknown = await post("/sign-in/email", { email: unknownEmail(), password: "wrong-password-123" });
  t.equal(existing.status, 401);
  t.equal(unknown.status, 401);
  t.same(existing.json, unknown.json, "the same body");
  await sameTime(t, "sign-in", () => post("/sign-in/email", { email: EXISTING, password: "wrong-password-123" }), () => post("/sign-in/email", { email: unknownEmail(), password: "wrong-password-123" }), UNIFORM);
});
