// The key format: recognizable prefix, 256 random bits, a checksum that catches every typo we
// can think of without a lookup, and the hash the database stores.
import t from "tap";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { API_KEY_LENGTH, API_KEY_PREFIX, checkApiKeyShape, generateApiKey, hashApiKey } from "../../src/keys/apiKeyFormat.ts";
import { keyInQuery } from "../../src/keys/keyInQuery.ts";
import { parseDuration } from "../../src/keys/duration.ts";

t.test("generated keys have the documented shape and pass their own checksum", async (t) => {
  const keys = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const key = generateApiKey();
    t.equal(key.length, API_KEY_LENGTH);
    t.ok(key.startsWith(API_KEY_PREFIX));
    t.equal(checkApiKeyShape(key), null);
    keys.add(key);
  }
  t.equal(keys.size, 2000, "no repeats");
  t.equal(API_KEY_LENGTH, 8 + 43 + 6, "gb_live_ + 43 base62 (256 bits) + 6 checksum characters");
});

t.test("malformed keys are classified without a lookup", async (t) => {
  const key = generateApiKey();
  t.equal(checkApiKeyShape(`gb_test_${key.slice(8)}`), "WRONG_PREFIX");
  t.equal(checkApiKeyShape(key.slice(0, -1)), "MALFORMED");
  t.equal(checkApiKeyShape(`${key}x`), "MALFORMED");
  t.equal(checkApiKeyShape(`${key.slice(0, 20)}-${key.slice(21)}`), "MALFORMED");
  t.equal(checkApiKeyShape(""), "WRONG_PREFIX");
});

t.test("any single-character change or adjacent swap fails the checksum (property)", async () => {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  fc.assert(
    fc.property(fc.integer({ min: 8, max: API_KEY_LENGTH - 1 }), fc.integer({ min: 1, max: 61 }), fc.boolean(), (position, shift, swap) => {
      const key = generateApiKey();
      let mutated: string;
      if (swap && position < API_KEY_LENGTH - 1 && key[position] !== key[position + 1]) {
        mutated = key.slice(0, position) + key[position + 1] + key[position] + key.slice(position + 2);
      } else {
        const replaced = alphabet[(alphabet.indexOf(key[position] ?? "0") + shift) % 62] ?? "0";
        mutated = key.slice(0, position) + replaced + key.slice(position + 1);
      }
      return checkApiKeyShape(mutated) !== null;
    }),
    { numRuns: 3000 },
  );
});

t.test("the stored hash is SHA-256 base64url, as Better Auth's plugin writes it", async (t) => {
  const key = generateApiKey();
  t.equal(hashApiKey(key), createHash("sha256").update(key).digest("base64url"));
  const { defaultKeyHasher } = await import("@better-auth/api-key");
  t.equal(await defaultKeyHasher(key), hashApiKey(key));
});

t.test("keys in query strings are recognized in any spelling", async (t) => {
  const key = generateApiKey();
  for (const query of [`?api_key=x`, `?apikey=x`, `?API-KEY=x`, `?x-api-key=x`, `?x_api_key=x`, `?a=1&q=${key}`, `?q=${encodeURIComponent(key).replace("_", "%5F")}`, `?token=GB_LIVE_x`, `?api%5Fkey=x`]) {
    t.ok(keyInQuery(query), query.slice(0, 30));
  }
  for (const query of ["", "?", "?q=apple", "?keyboard=1", "?monkey=2", "?page=2&sort=name"]) t.notOk(keyInQuery(query), query);
});

t.test("durations", async (t) => {
  t.equal(parseDuration("90s"), 90);
  t.equal(parseDuration("15m"), 900);
  t.equal(parseDuration("24h"), 86400);
  t.equal(parseDuration("30d"), 2592000);
  for (const bad of ["", "0d", "1w", "-1d", "1.5h", "d", "1 d"]) t.equal(parseDuration(bad), null, bad);
});
