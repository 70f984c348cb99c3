// What the upstream receives (src/pipeline/upstreamHeaders.ts): the gateway's identity first, the
// client's headers minus credentials, hop-by-hop, spoofable and gateway-namespace ones (also under
// `_` spellings), and the Cookie header without any gateway cookie.
import t from "tap";
import { upstreamHeaders, type IdentityContext } from "../../src/pipeline/upstreamHeaders.ts";
import type { Principal } from "../../src/auth/principal.ts";

const user: Principal = { userId: "u1", roles: Object.freeze(["user", "sales"]), authMethod: "session", attributes: { id: "u1" } };
const keyed: Principal = { userId: "u2", roles: Object.freeze(["partner"]), authMethod: "api-key", attributes: { id: "u2" }, key: { id: "key_1", tier: "t", scopes: Object.freeze(["catalog:read"]) } };
const anonymous: Principal = { userId: null, roles: Object.freeze([]), authMethod: "anonymous", attributes: {} };
const identity = (principal: Principal): IdentityContext => ({ principal, policyVersion: "2026-12-01", requestId: "req-1", assertion: "jwt", clientIp: "203.0.113.7", proto: "https" });

t.test("the identity comes first, in a fixed set of fields", async (t) => {
  const out = upstreamHeaders({ accept: "application/json" }, identity(user));
  t.same(Object.keys(out).slice(0, 8), ["x-gerbang-user", "x-gerbang-roles", "x-gerbang-auth", "x-gerbang-policy", "x-gerbang-assertion", "x-request-id", "x-forwarded-for", "x-forwarded-proto"]);
  t.same(out, {
    "x-gerbang-user": "u1", "x-gerbang-roles": "user,sales", "x-gerbang-auth": "session", "x-gerbang-policy": "2026-12-01", "x-gerbang-assertion": "jwt",
    "x-request-id": "req-1", "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", accept: "application/json",
  });
  t.equal(upstreamHeaders({}, identity(keyed))["x-gerbang-key"], "key_1", "a key's id for a key");
  t.equal(upstreamHeaders({}, identity(user))["x-gerbang-key"], undefined, "none otherwise");
  const anon = upstreamHeaders({}, identity(anonymous));
  t.equal(anon["x-gerbang-user"], undefined, "no user for anonymous");
  t.equal(anon["x-gerbang-roles"], "");
  t.equal(anon["x-gerbang-auth"], "anonymous");
});

t.test("client headers that are credentials, hop-by-hop, spoofable or the gateway's are dropped, also with _", async (t) => {
  const dropped = [
    "authorization", "x-api-key", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
    "proxy-authenticate", "expect", "host", "content-length", "x-original-url", "x-rewrite-url", "x-original-method", "x-http-method-override", "x-http-method",
    "x-method-override", "x-host", "x-original-host", "x-http-host-override", "x-forwarded-server", "x-middleware-subrequest", "forwarded", "x-real-ip",
    "x-client-ip", "true-client-ip", "cf-connecting-ip", "x-cluster-client-ip", "x-request-id", "x-gerbang-user", "x-gerbang-anything", "x-forwarded-host",
    "x-forwarded-for", "x_gerbang_user", "x_forwarded_for", "X_Real_IP", "transfer_encoding", "x_api_key",
  ];
  const incoming = Object.fromEntries([...dropped.map((h) => [h, "SPOOF"]), ["accept", "a"], ["x-custom", "c"], ["user-agent", "ua"]]);
  const out = upstreamHeaders(incoming, identity(user));
  t.notOk(Object.values(out).includes("SPOOF"), "none of them is forwarded");
  t.equal(out.accept, "a");
  t.equal(out["x-custom"], "c");
  t.equal(out["user-agent"], "ua");
});

t.test("fields the client names in Connection are dropped", async (t) => {
  const out = upstreamHeaders({ connection: "keep-alive, X-Secret , x-other", "x-secret": "1", "x-other": "2", "x-kept": "3" }, identity(user));
  t.equal(out["x-secret"], undefined);
  t.equal(out["x-other"], undefined);
  t.equal(out["x-kept"], "3");
});

t.test("the Cookie header keeps only cookies that are not the gateway's", async (t) => {
  t.equal(upstreamHeaders({ cookie: "lang=en; better-auth.session_token=x; better-auth.admin_session=y" }, identity(user)).cookie, "lang=en");
  t.equal(upstreamHeaders({ cookie: "better-auth.session_token=x" }, identity(user)).cookie, undefined, "nothing left: no Cookie at all");
  t.equal(upstreamHeaders({}, identity(user)).cookie, undefined);
});

t.test("repeated client fields stay repeated; undefined ones are skipped", async (t) => {
  const out = upstreamHeaders({ "x-multi": ["a", "b"], "x-none": undefined }, identity(user));
  t.same(out["x-multi"], ["a", "b"]);
  t.notOk("x-none" in out);
});
