import t from "tap";
import fc from "fast-check";
import { normalizeTarget } from "../../src/pipeline/normalizeTarget.ts";
import type { NormalizeOptions, NormalizeRejectReason, NormalizeResult } from "../../src/pipeline/normalizeTarget.ts";

type Expected = NormalizeRejectReason | { path: string; query?: string };
type Case = [input: string, expected: Expected, options?: NormalizeOptions];

const CI: NormalizeOptions = { caseInsensitive: true };

const cases: Case[] = [
  // Rule 1: origin-form only, length bound first.
  ["*", "ASTERISK_FORM"],
  ["http://evil.example/admin", "ABSOLUTE_FORM"],
  ["HTTPS://evil.example/", "ABSOLUTE_FORM"],
  ["hTtP://x/api", "ABSOLUTE_FORM"],
  ["ws+unix://x", "ABSOLUTE_FORM"],
  ["", "NOT_ORIGIN_FORM"],
  ["api/admin", "NOT_ORIGIN_FORM"],
  ["example.com:443", "NOT_ORIGIN_FORM"],
  ["*/admin", "NOT_ORIGIN_FORM"],
  [" /api", "NOT_ORIGIN_FORM"],
  ["?x=1", "NOT_ORIGIN_FORM"],
  ["\\admin", "NOT_ORIGIN_FORM"],
  ["/" + "a".repeat(8192), "TOO_LONG"],
  ["/" + "a".repeat(8191), { path: "/" + "a".repeat(8191) }],
  ["/abcdefghij", "TOO_LONG", { maxLength: 10 }],
  ["/abcdefghi", { path: "/abcdefghi" }, { maxLength: 10 }],
  ["x".repeat(9000), "TOO_LONG"],

  // Rule 2: visible ASCII only, no fragment, in path and query.
  ["/a b", "CONTROL_CHARACTER"],
  ["/a\tb", "CONTROL_CHARACTER"],
  ["/a\r\nHost: evil", "CONTROL_CHARACTER"],
  ["/a\0", "CONTROL_CHARACTER"],
  ["/a\x7f", "CONTROL_CHARACTER"],
  ["/caf\xe9", "NON_ASCII"],
  ["/a\xff", "NON_ASCII"],
  ["/a#frag", "FRAGMENT"],
  ["/#", "FRAGMENT"],
  ["/a?x#y", "FRAGMENT"],
  ["/a?x y", "CONTROL_CHARACTER"],
  ["/a?x=\n", "CONTROL_CHARACTER"],
  ["/a?\xe9", "NON_ASCII"],

  // Rule 3: query kept verbatim, only validated.
  ["/api/products?x=/../admin", { path: "/api/products", query: "?x=/../admin" }],
  ["/a?", { path: "/a", query: "" }],
  ["/?", { path: "/", query: "" }],
  ["/a??", { path: "/a", query: "??" }],
  ["/a?x=1?y=2", { path: "/a", query: "?x=1?y=2" }],
  ["/a?q=%e9%2f%5C;\\", { path: "/a", query: "?q=%e9%2f%5C;\\" }],
  ["/a?q=%41", { path: "/a", query: "?q=%41" }],
  ["/a?b=%zz", "INVALID_PERCENT_ENCODING"],
  ["/a?b=%2", "INVALID_PERCENT_ENCODING"],
  ["/a?b=%", "INVALID_PERCENT_ENCODING"],

  // Rule 4: percent-encoding in the path.
  ["/%41dmin", { path: "/Admin" }],
  ["/%61%62%63", { path: "/abc" }],
  ["/%7e%2D%5f%30", { path: "/~-_0" }],
  ["/a%3fb", { path: "/a%3Fb" }],
  ["/a%3Bx", { path: "/a%3Bx" }],
  ["/a%20b", { path: "/a%20b" }],
  ["/caf%c3%a9", { path: "/caf%C3%A9" }],
  ["/%e2%82%ac", { path: "/%E2%82%AC" }],
  ["/%F0%9F%98%80", { path: "/%F0%9F%98%80" }],
  ["/a%", "INVALID_PERCENT_ENCODING"],
  ["/a%4", "INVALID_PERCENT_ENCODING"],
  ["/a%g1", "INVALID_PERCENT_ENCODING"],
  ["/a%4?x", "INVALID_PERCENT_ENCODING"],
  ["/a%%41", "INVALID_PERCENT_ENCODING"],
  ["/a%2Fb", "ENCODED_SEPARATOR"],
  ["/a%2fb", "ENCODED_SEPARATOR"],
  ["/a%5Cb", "ENCODED_SEPARATOR"],
  ["/a%5cb", "ENCODED_SEPARATOR"],
  ["/%2e%2e%2fadmin", "ENCODED_SEPARATOR"],
  ["/a%00", "CONTROL_CHARACTER"],
  ["/a%0d%0aX: y", "CONTROL_CHARACTER"],
  ["/a%1f", "CONTROL_CHARACTER"],
  ["/a%7F", "CONTROL_CHARACTER"],
  ["/%252e%252e/admin", "DOUBLE_ENCODING"],
  ["/%252F", "DOUBLE_ENCODING"],
  ["/a%2525", "DOUBLE_ENCODING"],
  // Hex digits that only appear after unreserved decoding still make a double encoding.
  ["/a%25%32%65", "DOUBLE_ENCODING"],
  ["/a%252%65", "DOUBLE_ENCODING"],
  ["/a%25zz", { path: "/a%25zz" }],
  ["/a%25", { path: "/a%25" }],
  ["/a%25/2e", { path: "/a%25/2e" }],
  ["/a%25%2e", { path: "/a%25." }],
  ["/a%25%20", { path: "/a%25%20" }],
  ["/%C0%AE%C0%AE/admin", "INVALID_UTF8"],
  ["/%c0%af", "INVALID_UTF8"],
  ["/%E0%80%AF", "INVALID_UTF8"],
  ["/%ED%A0%80", "INVALID_UTF8"],
  ["/%E2%82", "INVALID_UTF8"],
  ["/%E2%82/%AC", "INVALID_UTF8"],
  ["/%C3a%A9", "INVALID_UTF8"],
  ["/%C3%20%A9", "INVALID_UTF8"],
  ["/%F4%90%80%80", "INVALID_UTF8"],
  ["/%80", "INVALID_UTF8"],
  ["/%E2%82?x", "INVALID_UTF8"],

  // Rule 5: raw backslash and matrix parameters.
  ["/api\\admin", "BACKSLASH"],
  ["/..\\admin", "BACKSLASH"],
  ["/api/admin;jsessionid=x", "PATH_PARAMETER"],
  ["/api;/admin", "PATH_PARAMETER"],
  ["/a/..;/admin", "PATH_PARAMETER"],

  // Rule 6: empty segments collapse; a single trailing slash is significant.
  ["//api//admin", { path: "/api/admin" }],
  ["//a///b", { path: "/a/b" }],
  ["/a/", { path: "/a/" }],
  ["/a//", { path: "/a/" }],
  ["//", { path: "/" }],
  ["/", { path: "/" }],
  ["///?x", { path: "/", query: "?x" }],

  // Rule 7: dot segments are rejected after unreserved decoding.
  ["/.", "DOT_SEGMENT"],
  ["/..", "DOT_SEGMENT"],
  ["/a/./b", "DOT_SEGMENT"],
  ["/a/../b", "DOT_SEGMENT"],
  ["/a/..", "DOT_SEGMENT"],
  ["/a/..?x", "DOT_SEGMENT"],
  ["/%2e", "DOT_SEGMENT"],
  ["/%2E%2e/admin", "DOT_SEGMENT"],
  ["/.%2e/admin", "DOT_SEGMENT"],
  ["/%2e./admin", "DOT_SEGMENT"],
  ["//..//admin", "DOT_SEGMENT"],
  ["/...", "DOT_SEGMENT"],
  ["/%2e%2E%2e", "DOT_SEGMENT"],
  ["/.well-known/x", { path: "/.well-known/x" }],
  ["/a./..b", "DOT_SEGMENT"],
  ["/.%20", { path: "/.%20" }],

  // Prefix-alike paths stay distinct.
  ["/api/admin", { path: "/api/admin" }],
  ["/api/administrator", { path: "/api/administrator" }],

  // Rule 8: case folding only on request, never touching hex digits or the query.
  ["/API/Admin", { path: "/API/Admin" }],
  ["/API/Admin", { path: "/api/admin" }, CI],
  ["/%41PI", { path: "/api" }, CI],
  ["/caf%c3%a9", { path: "/caf%C3%A9" }, CI],
  ["/A%3fB?Q=X", { path: "/a%3Fb", query: "?Q=X" }, CI],
  ["/%2E%2E", "DOT_SEGMENT", CI],
  ["/A%25%32%45", "DOUBLE_ENCODING", CI],
];

function describe(r: NormalizeResult): Expected {
  return r.ok ? { path: r.path, query: r.query } : r.reason;
}

function label(input: string): string {
  return JSON.stringify(input.length > 40 ? input.slice(0, 40) + "..." : input);
}

t.test("table", async (t) => {
  for (const [input, expected, options] of cases) {
    const got = normalizeTarget(input, options);
    const want = typeof expected === "string" ? expected : { path: expected.path, query: expected.query ?? "" };
    t.same(describe(got), want, `${label(input)}${options ? " " + JSON.stringify(options) : ""}`);
    if (got.ok) {
      // Rule 9 on every accepted table row.
      t.same(normalizeTarget(got.path + got.query, options), got, `idempotent ${label(input)}`);
    } else {
      t.ok(got.detail.length > 0 && got.detail.length <= 120, `short detail ${label(input)}`);
    }
  }
});

t.test("admin and administrator are different canonical paths", async (t) => {
  const a = normalizeTarget("/api/admin");
  const b = normalizeTarget("/api/administrator");
  t.ok(a.ok && b.ok && a.path !== b.path);
});

t.test("detail never echoes the input", async (t) => {
  const secret = "S".repeat(200);
  for (const input of [`/${secret} `, `/${secret}%2f`, `/${secret}\\`, `/${secret}?${secret}#`, `${secret}`]) {
    const r = normalizeTarget(input);
    t.equal(r.ok, false);
    if (!r.ok) t.notMatch(r.detail, /SSSS/, `no echo for ${r.reason}`);
  }
});

// Percent-decodes to bytes; used as a reference for "canonicalisation must not change meaning".
function decodeBytes(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(s.charCodeAt(i));
    }
  }
  return out;
}

const DANGEROUS = ["/", ".", "%", "2", "e", "E", "f", "F", "5", "c", "C", ";", "\\", "?", "#", "a", "A", "0", "]", "{", '"'];
const ENCODED = ["%00", "%2e", "%2E", "%2f", "%2F", "%5c", "%25", "%41", "%61", "%C0%AE", "%E2%82%AC", "%3b", "%20"];
// Loose UTF-8 lead and continuation bytes, so valid, truncated and interrupted sequences all occur.
const UTF8_PIECES = ["%C3", "%A9", "%E2", "%82", "%AC", "%F0", "%9F", "%80"];

const token = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...DANGEROUS) },
  { weight: 3, arbitrary: fc.constantFrom(...ENCODED) },
  { weight: 2, arbitrary: fc.constantFrom(...UTF8_PIECES) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b)) },
);
const target = fc
  .tuple(fc.constantFrom("/", "/", "/", "/", "//", "", "*", "http://"), fc.array(token, { maxLength: 24 }))
  .map(([prefix, parts]) => prefix + parts.join(""));

// Focused on how encoded high bytes interleave with literal, decoded and kept-encoded ASCII.
const utf8Target = fc
  .array(fc.constantFrom(...UTF8_PIECES, "a", "%41", "%20", "%25", "/"), { maxLength: 12 })
  .map((parts) => "/" + parts.join(""));

function isDotSegment(seg: string): boolean {
  return seg === "." || seg === "..";
}

// Throws (so fast-check shrinks) when an accepted result breaks a canonical-form invariant.
function checkInvariants(input: string, options: NormalizeOptions | undefined): boolean {
  const r = normalizeTarget(input, options);
  if (!r.ok) {
    if (r.detail.length === 0 || r.detail.length > 120 || !/^[\x20-\x7e]*$/.test(r.detail)) throw new Error(`bad detail: ${r.detail}`);
    return false;
  }
  const p = r.path;
  const fail = (why: string): never => {
    throw new Error(`${why}: ${JSON.stringify(input)} -> ${JSON.stringify(r)}`);
  };
  if (!p.startsWith("/")) fail("no leading slash");
  if (p.includes("//")) fail("empty segment");
  if (p.includes("\\") || p.includes(";") || p.includes("?") || p.includes("#")) fail("forbidden char");
  if (/%(2f|5c)/i.test(p)) fail("encoded separator");
  if (!/^[\x21-\x7e]*$/.test(p + r.query)) fail("non-visible ASCII");
  if (p.split("/").some(isDotSegment)) fail("dot segment");
  // Every remaining triplet is uppercase and encodes a non-unreserved byte.
  for (const m of p.matchAll(/%(..)/g)) {
    const hex = m[1] ?? "";
    if (!/^[0-9A-F]{2}$/.test(hex)) fail("hex not uppercase");
    if (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(parseInt(hex, 16)))) fail("unreserved left encoded");
  }
  if (/%25[0-9A-Fa-f]{2}/.test(p)) fail("double encoding survived");
  // The bytes the path denotes are valid UTF-8 as a whole, not just each run of encoded bytes.
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(decodeBytes(p)));
  } catch {
    fail("invalid UTF-8");
  }
  if (r.query === "?" || (r.query !== "" && !r.query.startsWith("?"))) fail("bad query");
  // Only characters outside RFC 3986 pchar grow (they are percent-encoded); everything else shrinks or stays.
  const pathPart = input.indexOf("?") < 0 ? input : input.slice(0, input.indexOf("?"));
  const encodedGrowth = 2 * [...pathPart].filter((ch) => '"<>^`{|}[]'.includes(ch)).length;
  if (p.length + r.query.length > input.length + encodedGrowth) fail("output grew");
  if (/["<>^`{|}[\]]/.test(p)) fail("non-pchar left raw");
  const again = normalizeTarget(p + r.query, options);
  if (!again.ok || again.path !== p || again.query !== r.query) fail(`not idempotent (${JSON.stringify(again)})`);
  if (!options?.caseInsensitive) {
    // Canonicalisation must only change spelling, never the bytes the path denotes.
    const q = input.indexOf("?");
    const rawPath = (q < 0 ? input : input.slice(0, q)).replace(/\/+/g, "/");
    if (decodeBytes(p).join() !== decodeBytes(rawPath).join()) fail("meaning changed");
  }
  return true;
}

t.test("property: dangerous alphabet yields rejection or a clean, idempotent path", async (t) => {
  const generators = [
    ["dangerous", target],
    ["utf8", utf8Target],
  ] as const;
  for (const [name, arbitrary] of generators) {
    for (const options of [undefined, CI]) {
      let accepted = 0;
      t.doesNotThrow(() => {
        fc.assert(
          fc.property(arbitrary, (input) => {
            if (checkInvariants(input, options)) accepted++;
          }),
          { numRuns: 2000 },
        );
      }, `invariants hold: ${name} ${JSON.stringify(options ?? {})}`);
      // Guards against a generator that only ever produces rejections (a vacuous property).
      t.ok(accepted >= 100, `enough accepted inputs: ${name} (${accepted})`);
    }
  }
});

t.test("property: case-insensitive mode only folds letters outside triplets", async (t) => {
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(target, (input) => {
        const plain = normalizeTarget(input);
        const folded = normalizeTarget(input, CI);
        if (plain.ok !== folded.ok) throw new Error(`acceptance differs for ${JSON.stringify(input)}`);
        if (!plain.ok || !folded.ok) {
          if (!plain.ok && !folded.ok && plain.reason !== folded.reason) throw new Error(`reason differs for ${JSON.stringify(input)}`);
          return;
        }
        const expected = plain.path.replace(/%[0-9A-F]{2}|[A-Z]/g, (m) => (m.length === 1 ? m.toLowerCase() : m));
        if (folded.path !== expected || folded.query !== plain.query) throw new Error(`bad fold for ${JSON.stringify(input)}`);
      }),
      { numRuns: 2000 },
    );
  });
});

t.test("characters outside pchar are percent-encoded, so the forwarded spelling equals the authorized one", async (t) => {
  const cases: Array<[string, string]> = [
    ['/api/shops/"x"', "/api/shops/%22x%22"],
    ["/api/{id}", "/api/%7Bid%7D"],
    ["/a|b^c`d", "/a%7Cb%5Ec%60d"],
    ["/a[1]", "/a%5B1%5D"],
    ["/a<b>", "/a%3Cb%3E"],
  ];
  for (const [input, path] of cases) {
    const r = normalizeTarget(input);
    t.same(r, { ok: true, path, query: "" }, input);
    // WHATWG URL, which the forwarding client uses, leaves the canonical spelling alone.
    t.equal(new URL(path, "http://upstream.test").pathname, path, `${input} survives URL parsing`);
  }
});

t.test("segments that start or end with '..' are refused (forwarding clients treat them as traversal)", async (t) => {
  for (const input of ["/api/products/..a", "/api/a../x", "/api/.../x", "/api/%2e%2ea/x", "/api/x..", "/.%2e."]) {
    const r = normalizeTarget(input);
    t.equal(r.ok ? "ok" : r.reason, "DOT_SEGMENT", input);
  }
  for (const input of ["/api/a..b", "/api/.a", "/api/a.", "/api/.well-known/x"]) {
    t.equal(normalizeTarget(input).ok, true, `${input} stays valid`);
  }
});
