// The gateway's cookie namespace (issue 12): which cookie names are the gateway's under every spelling
// a cookie jar or a framework folds, which Set-Cookie lines would touch one, and what of a Cookie
// header may travel upstream.
import t from "tap";
import fc from "fast-check";
import { isGatewayCookieName, setsGatewayCookie, withoutGatewayCookies } from "../../src/auth/gatewayCookies.ts";

t.test("names in the gateway's namespace, under every spelling", async (t) => {
  const ours = [
    "better-auth.session_token", "__Secure-better-auth.session_token", "__Host-better-auth.session_token", "__secure-BETTER-AUTH.x",
    "__Http-better-auth.x", "__Host-Http-better-auth.x", "__Secure-__Host-better-auth.x", " better-auth.x ", "\tbetter-auth.x",
    "Better-Auth.Session_Token", "better-auth%2Esession_token", "better%2Dauth.x", "better-auth_session_token", "better-auth-session_token",
    "better-auth", "BETTER-AUTH", "better-auth.", "__Secure- better-auth.x",
  ];
  for (const name of ours) t.ok(isGatewayCookieName(name), `${JSON.stringify(name)} is the gateway's`);
  const theirs = ["lang", "better-authority", "better-auth2", "my-better-auth.x", "betterauth.session_token", "__Secure-lang", "", "%", "better_auth.x"];
  for (const name of theirs) t.notOk(isGatewayCookieName(name), `${JSON.stringify(name)} is not`);
});

t.test("Set-Cookie lines that would set, overwrite or delete a gateway cookie", async (t) => {
  t.ok(setsGatewayCookie("better-auth.session_token=x"));
  t.ok(setsGatewayCookie("better-auth.session_token=; Max-Age=0"), "a deletion");
  t.ok(setsGatewayCookie("=better-auth.session_token=x; Path=/"), "a nameless cookie comes back as better-auth.session_token=x");
  t.ok(setsGatewayCookie(" =better-auth.session_token=x"));
  t.ok(setsGatewayCookie("better-auth.session_token"), "no = at all: the whole pair is read as the name");
  t.ok(setsGatewayCookie("="), "an empty nameless cookie is refused too");
  t.notOk(setsGatewayCookie("lang=en; Path=/"));
  t.notOk(setsGatewayCookie("theme=dark; better-auth.session_token=x"), "an attribute is not a cookie name");
  t.notOk(setsGatewayCookie("a=better-auth.session_token"), "a value is not a name");
  t.notOk(setsGatewayCookie("lang"), "a bare word of another name");
});

t.test("the Cookie header upstream keeps every other cookie, in order", async (t) => {
  t.equal(withoutGatewayCookies("lang=en; better-auth.session_token=x; theme=dark"), "lang=en; theme=dark");
  t.equal(withoutGatewayCookies("better-auth.session_token=x;better-auth.admin_session=y"), undefined, "nothing left: no header");
  t.equal(withoutGatewayCookies(";; lang=en ;"), "lang=en", "empty pairs dropped");
  t.equal(withoutGatewayCookies("=better-auth.session_token=x; a=1"), "a=1", "a nameless gateway cookie is dropped");
  t.equal(withoutGatewayCookies("a=better-auth.session_token=x"), "a=better-auth.session_token=x", "a value is left alone");
});

t.test("property: any folded spelling of a gateway cookie is recognised", async () => {
  const spelling = fc
    .tuple(
      fc.constantFrom("", " ", "\t", "  "),
      fc.constantFrom("", "__Secure-", "__Host-", "__secure-", "__HOST-", "__Http-"),
      fc.stringMatching(/^[._-][a-z_]{0,12}$/),
      fc.array(fc.boolean(), { minLength: 11, maxLength: 11 }),
      fc.boolean(),
    )
    .map(([ws, prefix, rest, upper, encodeDot]) => {
      const base = [..."better-auth"].map((c, i) => (upper[i] === true ? c.toUpperCase() : c)).join("");
      const tail = encodeDot && rest.startsWith(".") ? `%2E${rest.slice(1)}` : rest;
      return `${ws}${prefix}${base}${tail}${ws}`;
    });
  fc.assert(fc.property(spelling, (name) => isGatewayCookieName(name) && setsGatewayCookie(`${name}=v; Path=/`) && withoutGatewayCookies(`${name}=v`) === undefined));
});
