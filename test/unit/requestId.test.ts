// Request ids are UUIDv7 (RFC 9562): the version and variant bits, the time they carry, their order
// over time (what keeps the audit index on them cheap) and no repeats.
import t from "tap";
import fc from "fast-check";
import { requestId } from "../../src/pipeline/requestId.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const timeOf = (id: string): number => Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);

t.test("a UUID version 7 carrying its millisecond", async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (now) => {
      const id = requestId(now);
      return UUID_V7.test(id) && timeOf(id) === now;
    }),
  );
  t.match(requestId(), UUID_V7, "with the clock's time");
  t.ok(Math.abs(timeOf(requestId()) - Date.now()) < 1000);
});

t.test("ordered by time, and none repeats", async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 47 }), fc.integer({ min: 1, max: 2 ** 40 }), (earlier, gap) => requestId(earlier) < requestId(earlier + gap)),
  );
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(requestId(1_800_000_000_000));
  t.equal(seen.size, 100_000, "100,000 ids in one millisecond are all different (74 random bits each)");
});
