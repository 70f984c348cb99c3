import t from "tap";
import { CircuitBreaker, type CircuitState } from "../../src/forward/circuitBreaker.ts";

// The breaker's state machine with a clock the test turns; test/faults/upstreamFaults.test.ts drives
// the same breaker through a real gateway and a failing upstream.
function breaker(): { b: CircuitBreaker; clock: { now: number }; changes: CircuitState[] } {
  const clock = { now: 1_000_000 };
  const changes: CircuitState[] = [];
  const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, maxOpenMs: 3000, trialTimeoutMs: 5000, now: () => clock.now, onChange: (s) => changes.push(s) });
  return { b, clock, changes };
}

t.test("consecutive failures open the circuit; a success in between resets the count", async (t) => {
  const { b, changes } = breaker();
  b.failure(0);
  b.failure(0);
  b.success(0);
  b.failure(0);
  b.failure(0);
  t.equal(b.status.state, "closed", "two failures, a success, two failures: still closed");
  b.failure(0);
  t.equal(b.status.state, "open");
  t.same(changes, ["open"]);
  const refused = b.tryAcquire();
  t.same(refused, { allowed: false, retryAfterMs: 1000 }, "refused with the time left");
});

const ticketOf = (admitted: ReturnType<CircuitBreaker["tryAcquire"]>): number => (admitted.allowed ? admitted.ticket : -1);

t.test("after openMs one trial at a time; its failure doubles the wait up to maxOpenMs, its success closes", async (t) => {
  const { b, clock, changes } = breaker();
  for (let i = 0; i < 3; i++) b.failure(0);
  clock.now += 999;
  t.equal(b.tryAcquire().allowed, false, "1 ms early: still open");
  clock.now += 1;
  const first = b.tryAcquire();
  t.match(first, { allowed: true }, "openMs passed: a trial");
  t.ok(ticketOf(first) > 0, "with a ticket");
  t.equal(b.status.state, "half-open");
  t.equal(b.tryAcquire().allowed, false, "a second request while the trial runs is refused");
  b.failure(ticketOf(first));
  t.match(b.status, { state: "open", retryAfterMs: 2000 }, "the failed trial doubles openMs");
  clock.now += 2000;
  const second = ticketOf(b.tryAcquire());
  b.failure(second);
  t.match(b.status, { retryAfterMs: 3000 }, "capped at maxOpenMs");
  clock.now += 3000;
  b.success(ticketOf(b.tryAcquire()));
  t.match(b.status, { state: "closed", failures: 0 });
  t.same(changes, ["open", "half-open", "open", "half-open", "open", "half-open", "closed"]);
  for (let i = 0; i < 3; i++) b.failure(0);
  t.match(b.status, { state: "open", retryAfterMs: 1000 }, "after closing, the next opening starts from openMs again");
});

t.test("a trial that never reports (client gone) does not keep the circuit shut forever", async (t) => {
  const { b, clock } = breaker();
  for (let i = 0; i < 3; i++) b.failure(0);
  clock.now += 1000;
  const released = ticketOf(b.tryAcquire());
  b.release(released);
  const lost = b.tryAcquire();
  t.equal(lost.allowed, true, "released: the next request may be the trial");
  clock.now += 4999;
  t.equal(b.tryAcquire().allowed, false, "an unreported trial blocks others for trialTimeoutMs");
  clock.now += 1;
  const newer = ticketOf(b.tryAcquire());
  t.ok(newer > 0, "then it is presumed lost and a new trial starts");
  b.failure(ticketOf(lost));
  t.equal(b.status.state, "half-open", "the lost trial reporting late does not end the newer one");
  t.equal(b.tryAcquire().allowed, false, "and the newer trial still holds the slot");
  b.success(newer);
  t.equal(b.status.state, "closed");
});
