// The resolver cache both resolvers share: answers reused within the TTL, concurrent lookups
// coalesced, fresh lookups for writes, and no stale answer stored by a read that a write overtook.
import t from "tap";
import { ResolverCache } from "../../src/resolvers/resolverCache.ts";
import type { ResolveResult } from "../../src/resolvers/attributeResolver.ts";

const found = (owner: string): ResolveResult => ({ found: true, attributes: { owner } });
function deferred(): { promise: Promise<ResolveResult>; resolve(value: ResolveResult): void } {
  let resolve: (value: ResolveResult) => void = () => undefined;
  const promise = new Promise<ResolveResult>((r) => (resolve = r));
  return { promise, resolve };
}

t.test("reads are cached and coalesced; fresh reads are not served from the cache", async (t) => {
  const cache = new ResolverCache({ cacheTtlMs: 60_000, cacheMaxEntries: 10 });
  let calls = 0;
  const lookup = async (): Promise<ResolveResult> => found(`u${(calls += 1)}`);
  const [a, b] = await Promise.all([cache.get("k", false, lookup), cache.get("k", false, lookup)]);
  t.same([a, b, calls], [found("u1"), found("u1"), 1], "two concurrent reads, one lookup");
  t.same(await cache.get("k", false, lookup), found("u1"), "then from the cache");
  t.same(await cache.get("k", true, lookup), found("u2"), "a write reads afresh");
  cache.forget("k");
  t.same(await cache.get("k", false, lookup), found("u3"), "forgotten: read again");
});

t.test("a read that started before a write's forget() does not store what it read", async (t) => {
  const cache = new ResolverCache({ cacheTtlMs: 60_000, cacheMaxEntries: 10 });
  const slow = deferred();
  const before = cache.get("k", false, () => slow.promise);
  cache.forget("k");
  slow.resolve(found("before-the-write"));
  t.same(await before, found("before-the-write"), "its caller gets what it read");
  t.same(await cache.get("k", false, async () => found("after-the-write")), found("after-the-write"), "the next read does not get the stale answer");
  t.same(await cache.get("k", false, async () => found("never")), found("after-the-write"), "and the fresh one is cached as usual");
});
