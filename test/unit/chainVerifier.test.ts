// The chain verifier's judgement, on chains built with the documented hash: an untouched chain has no
// finding, and each kind of tampering anywhere in a chain of any length is reported at the row it
// touched, with the kind it was (fast-check picks the chain, the place and the tampering).
import t from "tap";
import fc from "fast-check";
import { canonicalEvent, canonicalJson, chainHash, GENESIS_HASH, storableJson, type AuditEventContent } from "../../src/audit/auditChain.ts";
import { ChainVerifier, type ChainRow, type TrustedHead } from "../../src/audit/chainVerifier.ts";

const INSTANCE = "host/1/abcd";

const event = (i: number, reason = "ALLOWED_BY_RULE"): AuditEventContent => ({
  at: new Date(Date.UTC(2026, 11, 1, 0, 0, i)),
  action: i % 3 === 0 ? "auth.sign_in" : "request",
  requestId: `req-${i}`,
  traceId: null,
  method: "GET",
  path: `/api/products/${i}`,
  principalId: `u-${i % 4}`,
  keyId: null,
  authMethod: "session",
  roles: "user",
  clientIp: "127.0.0.1",
  target: null,
  allowed: i % 2 === 0,
  reason,
  ruleId: null,
  policyVersion: "2026-12-01",
  upstream: "marketplace",
  status: 200,
  endpointId: "catalog.get",
  blockedFields: null,
  decisionInput: i % 5 === 0 ? { fields: ["name", "priceCents"], resource: { shopId: `s-${i}` } } : null,
  details: null,
});

function chain(length: number): ChainRow[] {
  let prev = GENESIS_HASH;
  return Array.from({ length }, (_, i) => {
    const content = event(i);
    const hash = chainHash(prev, canonicalEvent(INSTANCE, content));
    const row = { id: BigInt(i + 1), instance: INSTANCE, seq: BigInt(i + 1), prevHash: prev, hash, content };
    prev = hash;
    return row;
  });
}

const verify = (rows: readonly ChainRow[], heads: TrustedHead[] = []): ReturnType<ChainVerifier["end"]> => {
  const v = new ChainVerifier(INSTANCE, ChainVerifier.genesis(), heads);
  for (const r of rows) v.push(r);
  return v.end();
};

t.test("an untouched chain verifies", async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 60 }), (n) => verify(chain(n)).length === 0));
  t.pass();
});

t.test("each tampering is reported first, at the row it touched", async (t) => {
  const tampering = fc.constantFrom("edited", "deleted", "inserted", "reordered", "forged-insert");
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 40 }), fc.nat(), tampering, (n, pick, kind) => {
      const rows = chain(n);
      const at = 1 + (pick % (n - 2)); // never the first or last row: each kind is then well defined
      const target = rows[at] as ChainRow;
      let tampered: ChainRow[];
      let expected: { kind: string; id: bigint };
      if (kind === "edited") {
        tampered = rows.map((r) => (r === target ? { ...r, content: { ...r.content, allowed: !r.content.allowed } } : r));
        expected = { kind: "edited", id: target.id };
      } else if (kind === "deleted") {
        tampered = rows.filter((r) => r !== target);
        expected = { kind: "deleted", id: (rows[at + 1] as ChainRow).id };
      } else if (kind === "reordered") {
        const next = rows[at + 1] as ChainRow;
        // Seq values swapped, as an UPDATE would: the verifier reads the rows in seq order.
        tampered = rows.map((r) => (r === target ? { ...next, seq: target.seq } : r === next ? { ...target, seq: next.seq } : r));
        expected = { kind: "reordered", id: next.id };
      } else {
        // A row slipped in after `target`: with a made-up hash, or one computed with the documented algorithm.
        const content = event(1000, "FORGED");
        const hash = kind === "forged-insert" ? chainHash(target.hash, canonicalEvent(INSTANCE, content)) : "f".repeat(64);
        const forged: ChainRow = { id: 9999n, instance: INSTANCE, seq: target.seq + 1n, prevHash: target.hash, hash, content };
        tampered = [...rows.slice(0, at + 1), forged, ...rows.slice(at + 1).map((r) => ({ ...r, seq: r.seq + 1n }))];
        expected = { kind: "inserted", id: 9999n };
      }
      const findings = verify(tampered);
      return findings[0]?.kind === expected.kind && findings[0].id === expected.id.toString();
    }),
  );
  t.pass();
});

t.test("a tail deleted past a signed checkpoint is reported; one after the last checkpoint is not detectable", async (t) => {
  const rows = chain(10);
  const head = { id: 1n, seq: 8n, hash: (rows[7] as ChainRow).hash };
  t.same(verify(rows, [head]), [], "the checkpointed chain verifies");
  const cut = verify(rows.slice(0, 6), [head]);
  t.equal(cut[0]?.kind, "truncated");
  t.match(cut[0]?.message, /ends at seq 6 .* reached seq 8/);
  t.same(verify(rows.slice(0, 9), [head]), [], "rows after the last checkpoint can go unnoticed (the checkpoint interval bounds this)");
  const rewritten = chain(10).map((r, i) => (i === 7 ? { ...r, hash: "0".repeat(63) + "1" } : r));
  t.ok(verify(rewritten, [head]).some((f) => f.kind === "rewritten"), "a row that differs from a checkpoint is reported");
});

t.test("canonical JSON sorts keys at every depth and survives what PostgreSQL does to strings", async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [1, { z: null, y: "x" }], c: true } }), '{"a":{"c":true,"d":[1,{"y":"x","z":null}]},"b":1}');
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const stored = storableJson(value);
      // jsonb reorders keys and drops whitespace: parsing the stored text again gives the same canonical form.
      return canonicalJson(storableJson(JSON.parse(JSON.stringify(stored)))) === canonicalJson(stored);
    }),
  );
  t.equal(storableJson("a\u0000b\ud800"), "a\uFFFDb\uFFFD", "NUL and lone surrogates become U+FFFD before hashing");
});
