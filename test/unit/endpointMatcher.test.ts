// Endpoint patterns (src/policy/endpointMatcher.ts): which endpoint a canonical request path maps to
// decides which rule applies, so the most specific pattern must win whatever order the policy
// declares them in, methods must match exactly (HEAD borrows GET), and bad patterns are refused.
import t from "tap";
import { EndpointMatcher, compileEndpoint, patternProblems } from "../../src/policy/endpointMatcher.ts";
import type { EndpointSpec } from "../../src/policy/schema.ts";

const spec = (id: string, path: string, methods: string[] = ["GET"]): EndpointSpec => ({ id, path, methods, action: "read", subject: "X" }) as unknown as EndpointSpec;
const matcherOf = (specs: EndpointSpec[], caseInsensitive = false): EndpointMatcher => new EndpointMatcher(specs.map((s) => compileEndpoint(s, caseInsensitive)));
/** The id of the endpoint a request maps to, and its parameters; null when unmapped (denied). */
const route = (m: EndpointMatcher, method: string, path: string): [string, Record<string, string>] | null => {
  const found = m.match(method, path);
  return found === null ? null : [found.endpoint.spec.id, found.params];
};

t.test("the root pattern matches the root only; /** matches everything", async (t) => {
  const m = matcherOf([spec("root", "/")]);
  t.same(route(m, "GET", "/"), ["root", {}]);
  t.equal(route(m, "GET", "/a"), null, "not a path below it");
  const all = matcherOf([spec("all", "/**")]);
  t.same(route(all, "GET", "/"), ["all", {}]);
  t.same(route(all, "GET", "/a/b/c"), ["all", {}]);
  const both = matcherOf([spec("all", "/**"), spec("root", "/")]);
  t.same(route(both, "GET", "/"), ["root", {}], "the fixed root beats /**");
  t.same(route(both, "GET", "/x"), ["all", {}]);
});

t.test("a literal beats a parameter, in either declaration order", async (t) => {
  for (const order of [[spec("one", "/api/shops/:shopId"), spec("mine", "/api/shops/mine")], [spec("mine", "/api/shops/mine"), spec("one", "/api/shops/:shopId")]]) {
    const m = matcherOf(order);
    const label = order.map((s) => s.id).join(" then ");
    t.same(route(m, "GET", "/api/shops/mine"), ["mine", {}], `${label}: /api/shops/mine is the literal`);
    t.same(route(m, "GET", "/api/shops/shp_1"), ["one", { shopId: "shp_1" }], `${label}: others are the parameter`);
  }
});

t.test("specificity decides at the first differing segment, whatever the lengths", async (t) => {
  const m = matcherOf([spec("generic", "/api/:section/:id"), spec("admin", "/api/admin/**")]);
  t.same(route(m, "GET", "/api/admin/users"), ["admin", {}], "a literal early beats parameters");
  t.same(route(m, "GET", "/api/shops/1"), ["generic", { section: "shops", id: "1" }]);
  const rest = matcherOf([spec("below", "/api/x/**"), spec("exact", "/api/x")]);
  t.same(route(rest, "GET", "/api/x"), ["exact", {}], "the fixed pattern beats ** on its own path");
  t.same(route(rest, "GET", "/api/x/y/z"), ["below", {}], "** takes the paths below");
  const paramOrRest = matcherOf([spec("rest", "/api/:a/**"), spec("two", "/api/:a/:b")]);
  t.same(route(paramOrRest, "GET", "/api/p/q"), ["two", { a: "p", b: "q" }], "a parameter beats **");
  t.same(route(paramOrRest, "GET", "/api/p/q/r"), ["rest", { a: "p" }]);
  t.same(route(paramOrRest, "GET", "/api/p"), ["rest", { a: "p" }], "** also matches nothing below");
});

t.test("segment boundaries: /api/admin/** never catches /api/administrator", async (t) => {
  const m = matcherOf([spec("admin", "/api/admin/**")]);
  t.equal(route(m, "GET", "/api/administrator"), null);
  t.same(route(m, "GET", "/api/admin"), ["admin", {}]);
  t.equal(route(m, "GET", "/api"), null, "nor a shorter path");
});

t.test("a parameter is exactly one non-empty segment", async (t) => {
  const m = matcherOf([spec("one", "/api/shops/:shopId")]);
  t.equal(route(m, "GET", "/api/shops/"), null, "an empty segment is no parameter");
  t.equal(route(m, "GET", "/api/shops/a/b"), null, "nor two segments");
  t.equal(route(m, "GET", "/api/shops"), null, "nor none");
  t.same(compileEndpoint(spec("p", "/a/:x/b/:y"), false).paramNames, ["x", "y"]);
});

t.test("methods: exact, '*' for any, HEAD borrows GET only when it has no endpoint of its own", async (t) => {
  const m = matcherOf([spec("read", "/r"), spec("write", "/r", ["POST", "PUT"]), spec("any", "/any", ["*"])]);
  t.same(route(m, "GET", "/r"), ["read", {}]);
  t.same(route(m, "PUT", "/r"), ["write", {}]);
  t.equal(route(m, "DELETE", "/r"), null, "an unmapped method is unmapped");
  t.same(route(m, "HEAD", "/r"), ["read", {}], "HEAD is judged by the GET rules");
  t.same(route(m, "PATCH", "/any"), ["any", {}], "'*' matches any method");
  t.equal(route(m, "POST", "/nothing"), null);
  const head = matcherOf([spec("read", "/h"), spec("head", "/h", ["HEAD"])]);
  t.same(route(head, "HEAD", "/h"), ["head", {}], "a HEAD endpoint of its own wins");
  t.equal(route(matcherOf([spec("write", "/w", ["POST"])]), "HEAD", "/w"), null, "HEAD never borrows POST");
  t.equal(route(matcherOf([spec("read", "/g")]), "POST", "/g"), null, "POST never borrows GET");
});

t.test("equally specific patterns keep their declaration order", async (t) => {
  const m = matcherOf([spec("first", "/a/:x"), spec("second", "/a/:y")]);
  t.same(route(m, "GET", "/a/1"), ["first", { x: "1" }]);
});

t.test("case-insensitive policies compare lower-cased literals", async (t) => {
  const m = matcherOf([spec("shops", "/API/Shops/:Id")], true);
  t.same(route(m, "GET", "/api/shops/AbC"), ["shops", { Id: "AbC" }], "the literal is lower-cased; the parameter keeps its value");
  t.equal(route(matcherOf([spec("shops", "/API/Shops")], false), "GET", "/api/shops"), null, "case-sensitive by default");
});

t.test("patternProblems refuses what could never be a canonical path", async (t) => {
  t.same(patternProblems("/"), []);
  t.same(patternProblems("/api/shops/:shopId/**"), []);
  t.same(patternProblems("/a-b/c.d/e_f/~g"), []);
  t.same(patternProblems("/api/**/x"), ["** may only be the last segment"]);
  t.same(patternProblems("/api/:1x"), ["bad parameter :1x"]);
  t.same(patternProblems("/api/:"), ["bad parameter :"]);
  t.same(patternProblems("/api/:x-y"), ["bad parameter :x-y"]);
  t.same(patternProblems("/api/:id/x/:id"), ["duplicate parameter :id"]);
  for (const bad of ["a b", "%2F", ".", "..", "", "*", "a*"]) t.same(patternProblems(`/api/${bad}/x`), [`segment "${bad}" is not a canonical literal`], `"${bad}" refused`);
  t.equal(patternProblems("/**/:1/./x").length, 3, "every problem at once");
});
