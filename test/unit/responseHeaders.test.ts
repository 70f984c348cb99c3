// What of an upstream's response head reaches the client (issue 12). undici hands a field over as a
// string when it came once and as an array when repeated; both must be handled for every name.
import t from "tap";
import { MAX_SET_COOKIES, sanitizeResponseHeaders } from "../../src/forward/responseHeaders.ts";

const options = { remove: new Set(["server", "x-powered-by"]) };

t.test("one Set-Cookie (a string) and several (an array) are passed on", async (t) => {
  t.same(sanitizeResponseHeaders({ "set-cookie": "lang=en; Path=/" } as never, options), { "set-cookie": ["lang=en; Path=/"] });
  t.same(sanitizeResponseHeaders({ "set-cookie": ["a=1", "b=2"] }, options), { "set-cookie": ["a=1", "b=2"] });
  t.same(sanitizeResponseHeaders({ "set-cookie": ["better-auth.session_token=x", "a=1"] }, options), { "set-cookie": ["a=1"] }, "a gateway cookie is removed");
  t.same(sanitizeResponseHeaders({ "set-cookie": "better-auth.session_token=x" } as never, options), {}, "nothing left: no field");
});

t.test("hop-by-hop, connection-named, gateway-owned and configured fields are removed", async (t) => {
  const out = sanitizeResponseHeaders(
    {
      connection: "keep-alive, X-Named, x-other",
      "keep-alive": "timeout=72",
      "x-named": "1",
      "x-other": "2",
      "transfer-encoding": "chunked",
      te: "trailers",
      trailer: "x",
      upgrade: "h2c",
      "http2-settings": "x",
      "proxy-authenticate": "Basic",
      "proxy-anything": "x",
      "set-cookie2": "a=1",
      "alt-svc": "h3=\":443\"",
      "ratelimit-remaining": "999",
      "ratelimit-limit": "999",
      "ratelimit-reset": "1",
      "ratelimit-policy": "x",
      ratelimit: "x",
      server: "nginx",
      "x-powered-by": "PHP",
      "content-type": "text/plain",
      "x-kept": "yes",
    },
    options,
  );
  t.same(out, { "content-type": "text/plain", "x-kept": "yes" });
});

t.test("Connection named twice (an array) still names its fields", async (t) => {
  t.same(sanitizeResponseHeaders({ connection: ["x-a", "x-b"] as never, "x-a": "1", "x-b": "2", "x-c": "3" }, options), { "x-c": "3" });
});

t.test("the removal list is the configuration's: empty keeps Server", async (t) => {
  t.same(sanitizeResponseHeaders({ server: "demo", "x-powered-by": "x" }, { remove: new Set() }), { server: "demo", "x-powered-by": "x" });
});

t.test("Content-Length: one length repeated is that length; two lengths are no answer", async (t) => {
  t.same(sanitizeResponseHeaders({ "content-length": ["5", "5"] as never }, options), { "content-length": "5" });
  t.same(sanitizeResponseHeaders({ "content-length": "5" }, options), { "content-length": "5" });
  t.throws(() => sanitizeResponseHeaders({ "content-length": ["5", "6"] as never }, options), /conflicting content-length/);
});

t.test("names are compared case-insensitively and come out lower-cased", async (t) => {
  t.same(sanitizeResponseHeaders({ "X-Kept": "1", Server: "x", "Keep-Alive": "timeout=1" } as never, options), { "x-kept": "1" });
});

t.test("no deletion by other means: Clear-Site-Data removed, Set-Cookie floods cut", async (t) => {
  t.same(sanitizeResponseHeaders({ "clear-site-data": '"cookies"', "x-kept": "1" }, options), { "x-kept": "1" }, "Clear-Site-Data would wipe the session cookie");
  const flood = Array.from({ length: 300 }, (_, i) => `c${i}=1`);
  const out = sanitizeResponseHeaders({ "set-cookie": flood }, options);
  t.same(out["set-cookie"], flood.slice(0, MAX_SET_COOKIES), `the first ${MAX_SET_COOKIES} only: 300 would push the session cookie out of the jar`);
});
