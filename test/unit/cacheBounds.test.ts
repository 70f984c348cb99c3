// Every in-process cache on the request path holds at most its configured bound, whatever the
// traffic: distinct principals, role sets and rate-limit buckets beyond it are served, not hoarded.
// (The session cache's bound needs Better Auth: test/integration/authenticators.test.ts.)
import t from "tap";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSigningKey } from "../../src/identity/signingKey.ts";
import { AssertionSigner } from "../../src/identity/assertionSigner.ts";
import { AbilityCache } from "../../src/policy/abilityCache.ts";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { RateLimitCounters } from "../../src/ratelimit/rateLimitCounters.ts";
import type { Principal } from "../../src/auth/principal.ts";

const policy = loadPolicySet(fileURLToPath(new URL("../../policies/2026-12-01", import.meta.url)));

t.test("assertions: at most identity.cacheMaxEntries, and a cached one is reused", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-bounds-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const signer = new AssertionSigner(await loadSigningKey({ algorithm: "EdDSA", dataDir: dir }), 60, 3);
  const rules = policy.rulesByRole.get("user") ?? [];
  const principals: Principal[] = Array.from({ length: 10 }, (_, i) => ({ userId: `u${i}`, roles: ["user"], authMethod: "session", attributes: { id: `u${i}` } }));
  for (const p of principals) {
    await signer.assertionFor(p, rules, policy.version, "marketplace");
    t.ok(signer.size <= 3, `after ${p.userId}: ${signer.size} cached`);
  }
  const last = principals.at(-1) as Principal;
  const before = signer.size;
  await signer.assertionFor(last, rules, policy.version, "marketplace");
  t.equal(signer.size, before, "asking again for a cached principal adds nothing");
});

t.test("abilities: at most policy.abilityCacheMaxEntries, and still correct past the bound", async (t) => {
  const cache = new AbilityCache(policy, 2);
  const sets = [["user"], ["sales"], ["partner"], ["admin"], ["user", "sales"], ["anonymous"]];
  for (const roles of sets) {
    cache.get(roles);
    t.ok(cache.size <= 2, `after ${roles.join("+")}: ${cache.size} held`);
  }
  t.ok(cache.get(["admin"]).ability.can("access", "Admin"), "an ability compiled again after the cache emptied decides as before");
});

t.test("rate-limit windows: at most rateLimit.maxWindows, and every bucket still counted", async (t) => {
  const counters = new RateLimitCounters({ redis: null, keyPrefix: "bounds:", log: () => undefined, maxWindows: 5 });
  for (let i = 0; i < 50; i++) {
    const hit = await counters.hit(`caller-${i}`, 1, 60_000, { mode: "local", strict: false });
    t.ok(hit.allowed, `caller ${i}: its first request is allowed`);
    t.ok(counters.size <= 5, `${counters.size} windows held`);
  }
  const again = await counters.hit("caller-49", 1, 60_000, { mode: "local", strict: false });
  t.notOk(again.allowed, "a bucket still held counts its second request against a limit of 1");
});
