// Bypass regression suite, path confusion (issue 4): raw request targets over a socket to a real
// gateway process in front of the demo upstream, which records exactly what it received. Each case
// names the class and the public advisory it models. For every spelling the gateway either refuses
// (status, catalogue code and reason asserted) and the upstream receives nothing, or the upstream
// receives exactly one request whose target is the canonical form the policy evaluated (README,
// "Canonical path form"). A second gateway runs with `policy.caseInsensitivePaths: true`.
import t, { type Test } from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv, type GatewayEnv, type SignedIn } from "../helpers/gatewayEnv.ts";
import { catalogueError } from "../helpers/catalogueError.ts";
import { rawRequest, type RawResponse } from "../helpers/rawHttp.ts";

const pgMissing = await serviceGate("postgres");
const env: GatewayEnv = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
const folded: GatewayEnv = await startGatewayEnv({ postgres: pgMissing === false, config: { policy: { caseInsensitivePaths: true } } });
t.teardown(() => folded.close());
t.comment(`database: ${pgMissing === false ? "PostgreSQL" : `embedded (${pgMissing})`}`);

type Caller = "anonymous" | "user" | "admin";
const ROLE: Record<Caller, string> = { anonymous: "anonymous", user: "user", admin: "admin" };
async function callersOf(e: GatewayEnv): Promise<Record<Exclude<Caller, "anonymous">, SignedIn>> {
  return {
    user: await e.signIn("user@demo.gerbang.dev", "demo-user-password"),
    admin: await e.signIn("admin@demo.gerbang.dev", "demo-admin-password"),
  };
}
const tokens = new Map<GatewayEnv, Record<Exclude<Caller, "anonymous">, SignedIn>>([
  [env, await callersOf(env)],
  [folded, await callersOf(folded)],
]);

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
}
/** Everything the upstream received since the last clear, not only /api: a target that escaped the prefix must show up too. */
async function upstreamLog(e: GatewayEnv): Promise<Seen[]> {
  return (await (await fetch(`${e.upstreamUrl}/__demo/received`)).json()) as Seen[];
}

interface Case {
  target: string;
  as?: Caller;
  method?: string;
  status: number;
  /** The gateway's catalogue code; absent when the upstream answered. */
  code?: string;
  /** `error.reason`; absent means the body must carry none. */
  reason?: string;
  /** The exact request-target the upstream must receive, once; absent: it must receive nothing. */
  forwarded?: string;
}

async function send(e: GatewayEnv, c: Case): Promise<RawResponse> {
  const as = c.as ?? "anonymous";
  const auth = as === "anonymous" ? "" : `Authorization: Bearer ${tokens.get(e)?.[as].token ?? ""}\r\n`;
  return rawRequest(e.url, `${c.method ?? "GET"} ${c.target} HTTP/1.1\r\nHost: gateway.example\r\n${auth}Connection: close\r\n\r\n`);
}

/** One request: its status and error, and exactly what reached the upstream. */
async function check(tt: Test, e: GatewayEnv, c: Case): Promise<void> {
  const label = `${c.method ?? "GET"} ${JSON.stringify(c.target.length > 80 ? `${c.target.slice(0, 80)}…` : c.target)} as ${c.as ?? "anonymous"}`;
  await e.clearReceived();
  const response = await send(e, c);
  tt.equal(response.status, c.status, `${label}: ${c.status}`);
  const error = catalogueError(response.body);
  if (c.method === "HEAD") {
    // No body to read a catalogue error from.
  } else if (c.code === undefined) {
    tt.equal(error, undefined, `${label}: answered by the upstream, not a gateway error (${error?.code ?? ""})`);
  } else {
    tt.same(error, { code: c.code, reason: c.reason }, `${label}: ${c.code}${c.reason === undefined ? "" : ` ${c.reason}`}`);
  }
  const seen = await upstreamLog(e);
  if (c.forwarded === undefined) {
    tt.same(seen.map((r) => r.url), [], `${label}: nothing reached the upstream`);
    return;
  }
  tt.same(seen.map((r) => `${r.method} ${r.url}`), [`${c.method ?? "GET"} ${c.forwarded}`], `${label}: forwarded once as ${c.forwarded}`);
  tt.equal(seen[0]?.headers.host, new URL(e.upstreamUrl).host, `${label}: to the configured upstream`);
  tt.equal(seen[0]?.headers["x-gerbang-roles"], ROLE[c.as ?? "anonymous"], `${label}: with the identity the policy judged`);
}
const run = async (tt: Test, cases: Case[], e: GatewayEnv = env): Promise<void> => {
  for (const c of cases) await check(tt, e, c);
};

const BAD = (target: string, reason: string, as?: Caller): Case => ({ target, status: 400, code: "BAD_REQUEST_TARGET", reason, ...(as === undefined ? {} : { as }) });
const UNMAPPED = (target: string, as?: Caller): Case => ({ target, status: 403, code: "FORBIDDEN", reason: "ENDPOINT_NOT_MAPPED", ...(as === undefined ? {} : { as }) });
// Node's HTTP parser refuses the request line before a request exists; the gateway answers in catalogue JSON, without a reason.
const MALFORMED = (target: string): Case => ({ target, status: 400, code: "MALFORMED_REQUEST" });
const ANON_DENIED = (target: string): Case => ({ target, status: 401, code: "UNAUTHENTICATED", reason: "NO_MATCHING_RULE" });
const NO_ROUTE = (target: string): Case => ({ target, status: 404, code: "ROUTE_NOT_FOUND" });

t.test("baseline: the canonical spellings the other cases are measured against", async (t) => {
  await run(t, [
    { target: "/api/products", status: 200, forwarded: "/api/products" },
    ANON_DENIED("/api/inventory"),
    ANON_DENIED("/api/admin"),
    { target: "/api/admin", as: "user", status: 403, code: "FORBIDDEN", reason: "NO_MATCHING_RULE" },
    { target: "/api/admin/users", as: "admin", status: 200, forwarded: "/api/admin/users" },
  ]);
});

t.test("dot segments, raw and percent-encoded, are refused, never resolved", async (t) => {
  await run(t, [
    // Class: path traversal past an authorization prefix; Envoy CVE-2019-9901 (paths not normalized
    // before route/RBAC matching: `/public/../admin`).
    BAD("/api/products/../admin", "DOT_SEGMENT"),
    BAD("/api/products/../inventory", "DOT_SEGMENT"),
    BAD("/api/./inventory", "DOT_SEGMENT"),
    BAD("/api/inventory/..", "DOT_SEGMENT"),
    BAD("/api/products/./", "DOT_SEGMENT"),
    // CVE-2021-41773 (Apache httpd 2.4.49): `.%2e/` was not recognized as a dot segment.
    BAD("/api/products/.%2e/admin", "DOT_SEGMENT"),
    BAD("/api/products/%2e%2e/admin", "DOT_SEGMENT"),
    BAD("/api/products/%2E%2E/inventory", "DOT_SEGMENT"),
    BAD("/api/products/%2e./admin", "DOT_SEGMENT"),
    BAD("/api/%2e/inventory", "DOT_SEGMENT"),
    // CVE-2021-42013 (Apache httpd 2.4.50): double encoding, `%%32%65` and `%252e` decode to `.` on a second pass.
    BAD("/api/products/%252e%252e/admin", "DOUBLE_ENCODING"),
    BAD("/api/products/%25%32%65%25%32%65/admin", "DOUBLE_ENCODING"),
    BAD("/api/products/%%32%65%%32%65/admin", "INVALID_PERCENT_ENCODING"),
    // CVE-2008-2938 (Tomcat with UTF-8 URIs) and the IIS overlong-UTF-8 family: `%c0%ae` and `%e0%80%ae`
    // are overlong encodings of `.` that lenient decoders accept.
    BAD("/api/products/%c0%ae%c0%ae/admin", "INVALID_UTF8"),
    BAD("/api/products/%e0%80%ae%e0%80%ae/admin", "INVALID_UTF8"),
    BAD("/api/products/%C0%AE/admin", "INVALID_UTF8"),
    // Nginx alias off-by-slash (Orange Tsai, "Breaking Parser Logic", Black Hat 2018): `/static../x`
    // escapes an `alias` directory; segments starting or ending with `..` are refused.
    BAD("/api/products../admin", "DOT_SEGMENT"),
    BAD("/api/products/..admin", "DOT_SEGMENT"),
    BAD("/api/products/...", "DOT_SEGMENT"),
    // A single leading dot is an ordinary name: forwarded as it is (the demo upstream has no such product).
    { target: "/api/products/.hidden", status: 404, forwarded: "/api/products/.hidden" },
  ]);
});

t.test("encoded separators and backslashes are refused", async (t) => {
  await run(t, [
    // Envoy CVE-2021-29492: `%2F` and `%5C` were not normalized, so RBAC on `/admin` missed `/admin%2Fx`
    // which the upstream decoded into a separator. Also Tomcat CVE-2007-0450 (`%2F`, `%5C`, `\`).
    BAD("/api/products%2f..%2fadmin", "ENCODED_SEPARATOR"),
    BAD("/api/products%2F..%2Finventory", "ENCODED_SEPARATOR"),
    BAD("/api/admin%2Fusers", "ENCODED_SEPARATOR"),
    BAD("/api/products%5c..%5cadmin", "ENCODED_SEPARATOR"),
    BAD("/api/products%5C..%5Cinventory", "ENCODED_SEPARATOR"),
    // Apache Shiro CVE-2020-11989: a double-encoded slash `%252F` decoded to `/` by the application.
    BAD("/api/products/%252Fadmin", "DOUBLE_ENCODING"),
    BAD("/api/products/%25%32%66admin", "DOUBLE_ENCODING"),
    // CVE-2000-0884 (IIS "Unicode" traversal): `%c0%af` is an overlong `/`, `%c1%9c` an overlong `\`.
    BAD("/api/products/..%c0%af..%c0%afadmin", "INVALID_UTF8"),
    BAD("/api/products/x%c0%afadmin", "INVALID_UTF8"),
    BAD("/api/products/x%c1%9cadmin", "INVALID_UTF8"),
    // Raw backslash: a separator to IIS, Windows back-ends and WHATWG URL parsers, not to the policy matcher.
    BAD("/api/products\\..\\admin", "BACKSLASH"),
    BAD("/api\\inventory", "BACKSLASH"),
  ]);
});

t.test("duplicate and leading slashes collapse to the one spelling the policy judges", async (t) => {
  await run(t, [
    // Class: empty-segment confusion (Nginx merge_slashes, Spring `//admin` firewall bypasses): `//x`
    // must be judged as `/x` because many servers serve it as `/x`.
    { target: "//api/products", status: 200, forwarded: "/api/products" },
    { target: "/api//products", status: 200, forwarded: "/api/products" },
    { target: "///api///products", status: 200, forwarded: "/api/products" },
    ANON_DENIED("//api/inventory"),
    ANON_DENIED("/api//inventory"),
    ANON_DENIED("//api//admin//users"),
    { target: "//api//admin", as: "admin", status: 200, forwarded: "/api/admin" },
    { target: "/api/admin//users", as: "admin", status: 200, forwarded: "/api/admin/users" },
    { target: "/api/products//prd_1", status: 404, forwarded: "/api/products/prd_1" },
  ]);
});

t.test("';' path parameters are refused; an encoded ';' is part of the name", async (t) => {
  await run(t, [
    // Apache Shiro CVE-2020-1957 and F5 BIG-IP CVE-2020-5902: `/x/..;/admin` is `/x/../admin` to Tomcat
    // (which strips `;` parameters) but not to the filter in front of it.
    BAD("/api/products/..;/admin", "PATH_PARAMETER"),
    BAD("/api/products/..;/inventory", "PATH_PARAMETER"),
    // Tomcat/Spring matrix parameters: `/admin;/x` is routed as `/admin/x`, `;jsessionid=` is stripped.
    BAD("/api/admin;/users", "PATH_PARAMETER"),
    BAD("/api/inventory;jsessionid=1", "PATH_PARAMETER"),
    BAD("/api;/inventory", "PATH_PARAMETER"),
    // Apache Shiro CVE-2020-13933: an encoded `%3b` that the application decodes after the filter ran.
    // Here it is a literal character of the segment: `/api/inventory%3B` is not `/api/inventory` and is unmapped.
    UNMAPPED("/api/inventory%3b"),
    UNMAPPED("/api/admin%3b/users"),
    UNMAPPED("/api/admin%3B/users", "admin"),
    BAD("/api/products/..%3b/admin", "DOT_SEGMENT"),
    { target: "/api/products/x%3bjsessionid=1", status: 404, forwarded: "/api/products/x%3Bjsessionid=1" },
  ]);
});

t.test("control characters, raw and encoded, never reach a matcher or the upstream", async (t) => {
  await run(t, [
    // CVE-2013-4547 (nginx): an unescaped space (and NUL) in the URI bypassed location restrictions.
    // Raw control bytes in the request line are refused by the HTTP parser itself.
    MALFORMED("/api/inventory /x"),
    MALFORMED("/api/inventory\x00.json"),
    MALFORMED("/api/inv\tentory"),
    MALFORMED("/api/inventory\t"),
    // CVE-2018-12116 (Node.js request splitting through CR/LF and non-ASCII in a forwarded path).
    MALFORMED("/api/inv\rentory"),
    MALFORMED("/api/inv\nentory"),
    MALFORMED("/api/products\r\nX-Injected: 1\r\n"),
    MALFORMED("/api/products/\xc0\xae"),
    // NUL truncation (CWE-158): `/api/inventory%00.json` must not become `/api/inventory` anywhere.
    BAD("/api/inventory%00", "CONTROL_CHARACTER"),
    BAD("/api/products%00/../admin", "CONTROL_CHARACTER"),
    BAD("/api/inventory%00.json", "CONTROL_CHARACTER"),
    // CVE-2022-22978 (Spring Security RegexRequestMatcher): `.` did not match `\n`, so `/admin%0a` slipped past `/admin.*`.
    BAD("/api/admin%0a", "CONTROL_CHARACTER"),
    BAD("/api/admin%0d", "CONTROL_CHARACTER"),
    BAD("/api/admin/users%0A", "CONTROL_CHARACTER"),
    BAD("/api/products%0d%0aX-Injected:%201", "CONTROL_CHARACTER"),
    BAD("/api/inventory%09", "CONTROL_CHARACTER"),
    BAD("/api/inventory%7f", "CONTROL_CHARACTER"),
    // CVE-2016-5007 (Spring Security vs Spring MVC): MVC trimmed whitespace the security matcher kept.
    // An encoded space stays part of the segment: `/api/inventory%20` is unmapped, not `/api/inventory`.
    UNMAPPED("/api/inventory%20"),
    UNMAPPED("/api/admin%20", "user"),
  ]);
});

t.test("invalid percent-encoding and fragments are refused", async (t) => {
  await run(t, [
    // Decoder differentials: stacks keep, drop or 400 a stray `%`, so no spelling with one is authorized.
    BAD("/api/products%zz", "INVALID_PERCENT_ENCODING"),
    BAD("/api/products/%4", "INVALID_PERCENT_ENCODING"),
    BAD("/api/products/%", "INVALID_PERCENT_ENCODING"),
    BAD("/api/products/%g0", "INVALID_PERCENT_ENCODING"),
    // IIS `%u002e` encoding (the Code Red era's `%u` form).
    BAD("/api/products/%u002e%u002e/admin", "INVALID_PERCENT_ENCODING"),
    // `%25` followed by non-hex is a literal percent sign: kept, nothing decodes it twice.
    { target: "/api/products/100%25", status: 404, forwarded: "/api/products/100%25" },
    // Fragments: clients never send them; a proxy that cuts at `#` and one that does not see different paths.
    BAD("/api/products#/../admin", "FRAGMENT"),
    BAD("/api/inventory#", "FRAGMENT"),
    BAD("/api/products?x=1#/admin", "FRAGMENT"),
    // An encoded `#` is an ordinary character of the segment.
    UNMAPPED("/api/products%23"),
  ]);
});

t.test("case variants with the default config: paths are case sensitive and variants reach nothing", async (t) => {
  await run(t, [
    // Case confusion between a case-sensitive gateway and a case-insensitive upstream (Traefik/Kong-style
    // route matching in front of IIS/ASP.NET or Spring with case-insensitive matching): a variant must not
    // be forwarded under a rule written for another path. The upstream prefix `/api` is case sensitive.
    NO_ROUTE("/API/admin"),
    NO_ROUTE("/Api/Admin"),
    NO_ROUTE("/API/products"),
    // Inside `/api`, a variant of a literal segment matches no endpoint: denied for everyone, even an admin.
    UNMAPPED("/api/Admin"),
    UNMAPPED("/api/ADMIN/users", "admin"),
    UNMAPPED("/api/Admin/users", "admin"),
    UNMAPPED("/api/PRODUCTS"),
    UNMAPPED("/api/Inventory"),
    // Encoded unreserved characters are decoded before matching: `%70` is `p`, `%50` is `P`.
    { target: "/api/%70roducts", status: 200, forwarded: "/api/products" },
    UNMAPPED("/api/%50roducts"),
    ANON_DENIED("/api/%61dmin"),
    ANON_DENIED("/%61pi/%69nventory"),
    { target: "/api/%61dmin/users", as: "admin", status: 200, forwarded: "/api/admin/users" },
    UNMAPPED("/api/%41dmin", "admin"),
    // Gateway-owned routes follow the same rule: `/api/AUTH/...` is not the auth route and is not forwarded either.
    UNMAPPED("/api/AUTH/ok"),
    { target: "//api//auth/ok", status: 200 },
  ]);
});

t.test("case variants with caseInsensitivePaths: the lower-case path's rules, forwarded lower-cased", async (t) => {
  // Same class as above, the other way round: when the upstream is case-insensitive the gateway
  // folds case, so every variant must get exactly the decision of the lower-case path and be
  // forwarded in the canonical (lower-case) form; the query and percent-encoding hex stay as they are.
  const pairs: Array<[Caller, string, string, Omit<Case, "target" | "as">]> = [
    ["anonymous", "/API/PRODUCTS", "/api/products", { status: 200, forwarded: "/api/products" }],
    ["anonymous", "/Api/Products?Q=AbC", "/api/products?Q=AbC", { status: 200, forwarded: "/api/products?Q=AbC" }],
    ["anonymous", "/API/%50RODUCTS", "/api/products", { status: 200, forwarded: "/api/products" }],
    ["anonymous", "/API/PRODUCTS/PRD_1", "/api/products/prd_1", { status: 404, forwarded: "/api/products/prd_1" }],
    ["anonymous", "/API/PRODUCTS/%c3%a9", "/api/products/%C3%A9", { status: 404, forwarded: "/api/products/%C3%A9" }],
    ["anonymous", "/API/INVENTORY", "/api/inventory", { status: 401, code: "UNAUTHENTICATED", reason: "NO_MATCHING_RULE" }],
    ["anonymous", "/API/admin", "/api/admin", { status: 401, code: "UNAUTHENTICATED", reason: "NO_MATCHING_RULE" }],
    ["anonymous", "/Api/Admin", "/api/admin", { status: 401, code: "UNAUTHENTICATED", reason: "NO_MATCHING_RULE" }],
    ["user", "/API/ADMIN", "/api/admin", { status: 403, code: "FORBIDDEN", reason: "NO_MATCHING_RULE" }],
    ["admin", "/API/ADMIN/Users", "/api/admin/users", { status: 200, forwarded: "/api/admin/users" }],
    ["admin", "/Api/Administrator", "/api/administrator", { status: 403, code: "FORBIDDEN", reason: "ENDPOINT_NOT_MAPPED" }],
    // Gateway-owned: a case variant of `/api/auth` is served by the gateway, never forwarded.
    ["anonymous", "/API/AUTH/ok", "/api/auth/ok", { status: 200 }],
  ];
  for (const [as, variant, lower, expected] of pairs) {
    await check(t, folded, { target: lower, as, ...expected });
    await check(t, folded, { target: variant, as, ...expected });
  }
  await run(t, [BAD("/API/PRODUCTS/%2E%2E/ADMIN", "DOT_SEGMENT"), BAD("/API/ADMIN;/X", "PATH_PARAMETER", "admin"), BAD("/Api/Products%2FAdmin", "ENCODED_SEPARATOR")], folded);
});

t.test("trailing slashes and prefix boundaries: a rule for one path never matches its neighbours", async (t) => {
  await run(t, [
    // A trailing slash is significant (README): `/api/products/` is not `/api/products` and is unmapped.
    UNMAPPED("/api/products/"),
    UNMAPPED("/api/products//"),
    UNMAPPED("/api/inventory/"),
    // `/api/admin/**` owns `/api/admin/` (denied to anonymous callers like `/api/admin`), and forwards it to an admin as it is.
    ANON_DENIED("/api/admin/"),
    { target: "/api/admin/", as: "admin", status: 200, forwarded: "/api/admin/" },
    { target: "/api/admin//", as: "admin", status: 200, forwarded: "/api/admin/" },
    // Prefix-boundary confusion (string `startsWith` matchers; Nginx `location /admin` also matching `/administrator`):
    // the admin rule covers `/api/admin` and below only, so even an admin reaches nothing at `/api/administrator`.
    UNMAPPED("/api/administrator", "admin"),
    UNMAPPED("/api/admin-x", "admin"),
    UNMAPPED("/api/adminx/users", "admin"),
    UNMAPPED("/api/admin.json", "admin"),
    // The anonymous rule for `/api/products` does not extend to look-alikes next to it.
    UNMAPPED("/api/productsx"),
    UNMAPPED("/api/products-internal"),
    UNMAPPED("/api/products.json"),
    // The upstream prefix is matched on segment boundaries too: `/apix` and `/api-x` belong to no upstream.
    NO_ROUTE("/apix/products"),
    NO_ROUTE("/api-products"),
    NO_ROUTE("/api.json"),
    UNMAPPED("/api"),
    UNMAPPED("/api/"),
  ]);
});

t.test("absolute-form and asterisk-form targets are not routable", async (t) => {
  const upstream = new URL(env.upstreamUrl).host;
  await run(t, [
    // Class: absolute-form lets the client name the authority (open-proxy abuse; RFC 9112 §3.2.2 makes
    // servers accept it): only origin-form is routed, whatever host it names, the upstream's included.
    BAD("http://evil.example/api/products", "ABSOLUTE_FORM"),
    BAD(`http://${upstream}/api/admin/users`, "ABSOLUTE_FORM"),
    BAD(`${env.url}/api/products`, "ABSOLUTE_FORM"),
    BAD("HTTP://evil.example/api/products", "ABSOLUTE_FORM"),
    BAD("https://evil.example/api/products", "ABSOLUTE_FORM"),
    // Asterisk-form (RFC 9112 §3.2.4) is for server-wide OPTIONS only.
    { ...BAD("*", "ASTERISK_FORM"), method: "OPTIONS" },
    BAD("*", "ASTERISK_FORM"),
    // Neither origin-form nor absolute-form: refused by the HTTP parser.
    MALFORMED("api/products"),
  ]);
});

t.test("query strings that look like paths are forwarded but never change the path the policy saw", async (t) => {
  await run(t, [
    // Class: a filter that matches on the full URL (query included) while the upstream routes on the path,
    // or the reverse: the policy judges the path alone and the query travels verbatim.
    { target: "/api/products?/../admin", status: 200, forwarded: "/api/products?/../admin" },
    { target: "/api/products?x=/api/admin", status: 200, forwarded: "/api/products?x=/api/admin" },
    { target: "/api/products?%2e%2e/admin", status: 200, forwarded: "/api/products?%2e%2e/admin" },
    { target: "/api/products?x=%2F..%2Fadmin&y=..;/", status: 200, forwarded: "/api/products?x=%2F..%2Fadmin&y=..;/" },
    { target: "//api/products?//api/admin", status: 200, forwarded: "/api/products?//api/admin" },
    // The other way round: a protected path with a harmless-looking query is judged as the protected path.
    ANON_DENIED("/api/inventory?/../products"),
    ANON_DENIED("/api/admin?x=/api/products"),
    // A bare trailing `?` carries nothing and is dropped.
    { target: "/api/products?", status: 200, forwarded: "/api/products" },
    // An encoded `?` does not start a query: it stays in the segment.
    UNMAPPED("/api/products%3Fx=1"),
    BAD("/api/products%3F/../admin", "DOT_SEGMENT"),
    // The query is forwarded, so it must be clean too.
    BAD("/api/products?x=%zz", "INVALID_PERCENT_ENCODING"),
    MALFORMED("/api/products?x=\x00"),
  ]);
});

t.test("non-ASCII look-alikes stay encoded; invalid UTF-8 is refused", async (t) => {
  await run(t, [
    // Unicode normalization and best-fit mapping (Orange Tsai and splitline, "WorstFit", 2025; PHP-CGI
    // CVE-2024-4577 is the best-known best-fit case): U+FF0E (fullwidth full stop) and U+FF0F (fullwidth
    // solidus) become `.` and `/` under NFKC or a Windows best-fit code page. The gateway never decodes them:
    // they are forwarded exactly as the policy judged them, as one opaque segment.
    { target: "/api/products/%ef%bc%8e%ef%bc%8e", status: 404, forwarded: "/api/products/%EF%BC%8E%EF%BC%8E" },
    { target: "/api/products/a%ef%bc%8fb", status: 404, forwarded: "/api/products/a%EF%BC%8Fb" },
    UNMAPPED("/api/products/%ef%bc%8e%ef%bc%8e/admin"),
    // U+202E (right-to-left override): valid UTF-8, kept encoded.
    { target: "/api/products/%e2%80%ae", status: 404, forwarded: "/api/products/%E2%80%AE" },
    // A UTF-16 surrogate and a code point above U+10FFFF are not UTF-8 (lenient decoders turn them into U+FFFD or worse).
    BAD("/api/products/%ed%a0%80", "INVALID_UTF8"),
    BAD("/api/products/%f4%90%80%80", "INVALID_UTF8"),
    BAD("/api/products/%c3", "INVALID_UTF8"),
    BAD("/api/products/%c3%41", "INVALID_UTF8"),
  ]);
});

t.test("gateway-owned routes and other methods see the same canonical form", async (t) => {
  await run(t, [
    // Class: a spelling that misses the gateway's own route falls through to the upstream (the gateway
    // would then forward `/api/auth/...` or `/api/keys` to a service that trusts it). Decoded and collapsed first.
    { target: "/api/%61uth/ok", status: 200 },
    { target: "//api//auth//ok", status: 200 },
    // Better Auth's API-key plugin endpoints stay hidden under any spelling.
    NO_ROUTE("//api//auth//api-key/list"),
    NO_ROUTE("/api/%61uth/api-key/list"),
    // /api/keys is the gateway's key route (anonymous: 401 without a decision reason), never the upstream's.
    { target: "/api/%6Beys", status: 401, code: "UNAUTHENTICATED" },
    { target: "//.well-known//jwks.json", status: 200 },
    // The internal target rejected requests are rewritten to is not a way in.
    NO_ROUTE("/__gerbang/rejected-target"),
    NO_ROUTE("/.well-known/gerbang/attributes/Order/ord_1"),
    // Methods other than GET go through the same normalizer (HEAD is judged by the GET rules).
    { target: "//api/products", method: "HEAD", status: 200, forwarded: "/api/products" },
    { target: "/api//inventory", method: "HEAD", status: 401 },
    { target: "//api//admin//x", method: "DELETE", as: "admin", status: 200, forwarded: "/api/admin/x" },
    { ...BAD("/api/admin/%2e%2e/x", "DOT_SEGMENT", "admin"), method: "DELETE" },
    { ...BAD("/api/admin;/x", "PATH_PARAMETER"), method: "POST" },
  ]);
});

t.test("an overlong target is refused before any byte is interpreted", async (t) => {
  // Class: truncation of long paths by one hop and not another.
  await run(t, [BAD(`/api/products/${"a".repeat(8200)}`, "TOO_LONG")]);
});

t.test("the gateway is healthy after all of it", async (t) => {
  for (const e of [env, folded]) t.equal((await rawRequest(e.url, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).status, 200);
});
