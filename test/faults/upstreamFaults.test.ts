// Faults, upstream side (issue 4): a real gateway process in front of an upstream the test makes
// refuse connections, hang, reset, answer garbage or cut a body short. Every failure must become a
// catalogue 502/504 within the configured timeout, leak no sockets, leave the gateway healthy, and a
// failing upstream must be left alone by its circuit breaker while another upstream keeps serving.
import t from "tap";
import { readdirSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { startFaultyUpstream } from "../helpers/faultyUpstream.ts";
import { startRecordingUpstream } from "../helpers/recordingUpstream.ts";
import { eventually } from "../helpers/eventually.ts";
import { logCaughtUp } from "../helpers/logCaughtUp.ts";

const pgMissing = await serviceGate("postgres");
const flaky = await startFaultyUpstream();
t.teardown(() => flaky.close());
const steady = await startRecordingUpstream();
t.teardown(() => steady.close());
const TIMEOUT_MS = 1000;
const env = await startGatewayEnv({
  postgres: pgMissing === false,
  config: {
    policy: { dir: fileURLToPath(new URL("../fixtures/policies", import.meta.url)), version: "probe-1" },
    upstreams: [
      { name: "flaky", prefix: "/probe", url: flaky.url, timeoutMs: TIMEOUT_MS, circuitBreaker: { failureThreshold: 3, openMs: 4000, maxOpenMs: 8000 } },
      { name: "steady", prefix: "/slow", url: steady.url, timeoutMs: 5000 },
    ],
  },
});
t.teardown(() => env.close());

const get = async (path: string): Promise<{ status: number; code?: string; reason?: string; retryAfter: string | null; ms: number }> => {
  const started = Date.now();
  const response = await fetch(`${env.url}${path}`);
  const text = await response.text();
  let error: { code?: string; reason?: string } = {};
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
  } catch {
    // an upstream body
  }
  return { status: response.status, ...error, retryAfter: response.headers.get("retry-after"), ms: Date.now() - started };
};
/** Sockets the gateway process holds open (client, upstream, database, Redis, listening). */
const gatewaySockets = (): number => {
  const dir = `/proc/${env.gateway.child.pid}/fd`;
  let count = 0;
  for (const fd of readdirSync(dir)) {
    try {
      if (readlinkSync(`${dir}/${fd}`).startsWith("socket:")) count += 1;
    } catch {
      // closed meanwhile
    }
  }
  return count;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test("each kind of upstream failure is a catalogue error in time; a success in between resets the count", async (t) => {
  t.equal((await get("/probe/ok")).status, 200, "healthy upstream: 200");

  flaky.mode = "reset";
  t.match(await get("/probe/reset"), { status: 502, code: "UPSTREAM_UNREACHABLE" }, "connection reset: 502");
  flaky.mode = "garbage";
  t.match(await get("/probe/garbage"), { status: 502, code: "UPSTREAM_UNREACHABLE" }, "an answer that is not HTTP: 502");
  flaky.mode = "ok";
  t.equal((await get("/probe/ok")).status, 200, "a success closes the run of failures");

  flaky.mode = "slow";
  const slow = await get("/probe/slow");
  t.match(slow, { status: 504, code: "UPSTREAM_TIMEOUT" }, "no answer: 504");
  t.ok(slow.ms >= TIMEOUT_MS - 50 && slow.ms < TIMEOUT_MS + 3000, `504 after the configured ${TIMEOUT_MS} ms (took ${slow.ms} ms)`);
  await flaky.down();
  t.match(await get("/probe/down"), { status: 502, code: "UPSTREAM_UNREACHABLE" }, "connection refused: 502");
  await flaky.up();
  flaky.mode = "ok";
  t.equal((await get("/probe/ok")).status, 200, "two failures and a success: the circuit never opened");

  flaky.mode = "truncated";
  const started = await fetch(`${env.url}/probe/truncated`);
  t.equal(started.status, 200, "the upstream's answer started");
  flaky.cutTruncated();
  const truncated = await started.text().then(
    () => "complete",
    () => "cut",
  );
  t.equal(truncated, "cut", "a body cut short upstream is cut short for the client, never completed or padded");
  flaky.mode = "ok";
  t.equal((await get("/probe/ok")).status, 200);
  t.match(await (await fetch(`${env.url}/healthz`)).json(), { status: "ok" }, "the gateway is healthy after all of it");
  t.ok(await logCaughtUp(() => env.gateway.output()), "the log is written");
  t.notMatch(env.gateway.output(), /unhandled|TypeError|at .*\.ts:\d+/, "nothing unhandled in the gateway's log");
});

t.test("many failing requests leak no sockets, on the client side or the upstream side", async (t) => {
  flaky.mode = "ok";
  await get("/probe/warm");
  await sleep(300);
  const before = gatewaySockets();
  // Each wave stays below the failure threshold in a row (a success after every two failures), so every
  // request really reaches the upstream and fails there.
  const reachedBefore = flaky.requests;
  for (const mode of ["reset", "garbage", "truncated"] as const) {
    for (let wave = 0; wave < 10; wave++) {
      flaky.mode = mode;
      const sent = flaky.requests;
      const pending = [get(`/probe/${mode}`), get(`/probe/${mode}`)].map((p) => p.catch(() => null));
      if (mode === "truncated") {
        for (const deadline = Date.now() + 10_000; flaky.requests < sent + 2 && Date.now() < deadline; ) await sleep(10);
        await sleep(50);
        flaky.cutTruncated();
      }
      const results = await Promise.all(pending);
      // A cut body ends the client's read (null); a cut before the answer started is a 502.
      const expected = mode === "truncated" ? results.every((r) => r === null || r.status === 502) : results.every((r) => r?.status === 502);
      if (!expected) t.fail(`${mode} wave ${wave}: ${JSON.stringify(results)}`);
      flaky.mode = "ok";
      t.equal((await get("/probe/ok")).status, 200, `${mode} wave ${wave}: the circuit stayed closed`);
    }
  }
  flaky.mode = "slow";
  t.same((await Promise.all(Array.from({ length: 2 }, () => get("/probe/slow")))).map((r) => r.status), [504, 504]);
  flaky.mode = "ok";
  await get("/probe/ok");
  t.equal(flaky.requests - reachedBefore, 93, "every one of the 93 requests reached the upstream (60 failing, 30 ok, 2 slow, 1 ok)");
  // Idle upstream connections close after undici's keep-alive timeout (4 s); wait for that and compare.
  let after = gatewaySockets();
  for (let i = 0; i < 40 && after > before + 2; i++) {
    await sleep(250);
    after = gatewaySockets();
  }
  t.ok(after <= before + 2, `gateway sockets before ${before}, after ${after}`);
  t.ok(flaky.open <= 4, `connections still open at the upstream: ${flaky.open}`);
  t.equal((await get("/probe/ok")).status, 200);
});

t.test("a circuit breaker stops hammering a dead upstream, keeps others serving, and recovers", async (t) => {
  flaky.mode = "ok";
  t.equal((await get("/probe/ok")).status, 200);
  flaky.mode = "reset";
  for (let i = 0; i < 3; i++) t.equal((await get("/probe/x")).status, 502, `failure ${i + 1} reaches the upstream`);
  const reached = flaky.requests;
  const open = await get("/probe/x");
  t.match(open, { status: 503, code: "UPSTREAM_UNAVAILABLE", reason: "CIRCUIT_OPEN" }, "threshold reached: the circuit is open");
  t.ok(Number(open.retryAfter) >= 1 && Number(open.retryAfter) <= 4, `Retry-After ${open.retryAfter}`);
  const burst = await Promise.all(Array.from({ length: 30 }, () => get("/probe/x")));
  // "At once": without waiting for the upstream (which would take the 1 s timeout at least).
  t.ok(burst.every((r) => r.status === 503 && r.ms < TIMEOUT_MS), "30 more requests: all 503 at once");
  t.equal(flaky.requests, reached, "none of them reached the upstream");
  t.equal((await get("/slow/1")).status, 200, "another upstream is not affected");
  const degraded = await fetch(`${env.url}/readyz`);
  t.equal(degraded.status, 200, "an open circuit degrades readiness, it does not take the gateway out");
  t.match(await degraded.json(), { status: "degraded", checks: { upstreams: "failing" } });
  t.ok(await eventually(() => /upstream circuit open/.test(env.gateway.output())), "the opening is logged");

  await sleep(4100);
  const trial = await get("/probe/x");
  t.equal(trial.status, 502, "after openMs one trial request goes through (and fails: the upstream still resets)");
  t.equal(flaky.requests, reached + 1, "exactly one trial reached the upstream");
  const reopened = await get("/probe/x");
  t.match(reopened, { status: 503, reason: "CIRCUIT_OPEN" }, "a failed trial opens the circuit again");
  t.ok(Number(reopened.retryAfter) >= 5, `for twice as long (Retry-After ${reopened.retryAfter})`);

  flaky.mode = "held";
  await sleep(8100);
  const reachedBeforeTrial = flaky.requests;
  const secondTrial = get("/probe/x");
  for (const deadline = Date.now() + 10_000; flaky.requests === reachedBeforeTrial && Date.now() < deadline; ) await sleep(10);
  t.equal(flaky.requests, reachedBeforeTrial + 1, "half-open: the trial reached the upstream (which holds its answer)");
  const meanwhile = await Promise.all(Array.from({ length: 4 }, () => get("/probe/x")));
  t.same(meanwhile.map((r) => [r.status, r.reason, r.retryAfter]), Array.from({ length: 4 }, () => [503, "CIRCUIT_OPEN", "1"]), "while it runs, the others are refused (Retry-After 1)");
  t.equal(flaky.requests, reachedBeforeTrial + 1, "and do not reach the upstream");
  flaky.releaseHeld();
  t.equal((await secondTrial).status, 200, "the trial succeeds");
  flaky.mode = "ok";
  const after = await Promise.all(Array.from({ length: 5 }, () => get("/probe/x")));
  t.ok(after.every((r) => r.status === 200), "a successful trial closes the circuit");
  t.match(await (await fetch(`${env.url}/readyz`)).json(), { status: "ready", checks: { upstreams: "ok" } });
  t.ok(await eventually(() => /upstream circuit closed/.test(env.gateway.output())), "the recovery is logged");
});
