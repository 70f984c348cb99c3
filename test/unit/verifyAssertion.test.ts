import t from "tap";
import type { Test } from "tap";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { subject } from "@casl/ability";
import { packRules } from "@casl/ability/extra";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { CryptoKey, JWK, JWTPayload } from "jose";
import { AssertionError, createAssertionVerifier } from "../../src/upstream/verifyAssertion.ts";
import { startDemoUpstream } from "../../src/demo/upstream.ts";

const ED_KID = "gw-ed-1";
const EC_KID = "gw-ec-1";
const ed = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
const ec = await generateKeyPair("ES256", { extractable: true });
const impostor = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });

const keys: JWK[] = [
  { ...(await exportJWK(ed.publicKey)), kid: ED_KID, alg: "EdDSA", use: "sig" },
  { ...(await exportJWK(ec.publicKey)), kid: EC_KID, alg: "ES256", use: "sig" },
];
const jwksServer = createServer((req, res) => {
  if (req.url !== "/.well-known/jwks.json") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
});
await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
t.teardown(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

const rules = packRules([
  { action: "read", subject: "Order", conditions: { buyerId: "user_1" } },
  { action: ["update", "delete"], subject: "Shop", conditions: { ownerId: "user_1" } },
  { action: "delete", subject: "Shop", conditions: { status: "locked" }, inverted: true, reason: "locked" },
  { action: "read", subject: "Product" },
]);

interface SignOptions {
  claims?: JWTPayload;
  iat?: number;
  lifetime?: number;
  key?: CryptoKey;
  alg?: string;
  kid?: string;
}

async function sign(options: SignOptions = {}): Promise<string> {
  const iat = options.iat ?? Math.floor(Date.now() / 1000);
  const claims: JWTPayload = {
    iss: "gerbang",
    sub: "user_1",
    aud: "marketplace",
    roles: ["buyer", "seller"],
    auth: "session",
    policy: "2024-06-01.3",
    rules,
    ...options.claims,
  };
  const alg = options.alg ?? "EdDSA";
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid: options.kid ?? (alg === "ES256" ? EC_KID : ED_KID) })
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.lifetime ?? 60))
    .sign(options.key ?? (alg === "ES256" ? ec.privateKey : ed.privateKey));
}

const verify = createAssertionVerifier({ jwksUrl, audience: "marketplace" });

async function rejectsWith(t: Test, token: Promise<string> | string, code: string, message: string): Promise<void> {
  try {
    await verify(await token);
    t.fail(`${message}: expected rejection`);
  } catch (error) {
    t.ok(error instanceof AssertionError, `${message}: AssertionError`);
    t.equal((error as AssertionError).code, code, message);
  }
}

t.test("a valid token yields the identity and a working ability", async (t) => {
  const identity = await verify(await sign());
  t.equal(identity.subject, "user_1");
  t.equal(identity.userId, "user_1");
  t.same(identity.roles, ["buyer", "seller"]);
  t.equal(identity.auth, "session");
  t.equal(identity.policyVersion, "2024-06-01.3");
  t.ok(identity.expiresAt.getTime() > Date.now());

  const { ability } = identity;
  t.ok(ability.can("read", subject("Order", { buyerId: "user_1" })));
  t.notOk(ability.can("read", subject("Order", { buyerId: "user_2" })));
  t.ok(ability.can("update", subject("Shop", { ownerId: "user_1" })));
  t.ok(ability.can("delete", subject("Shop", { ownerId: "user_1", status: "open" })));
  t.notOk(ability.can("delete", subject("Shop", { ownerId: "user_1", status: "locked" })));
  t.ok(ability.can("read", "Product"));
  t.notOk(ability.can("create", "Shop"));

  const es = await verify(await sign({ alg: "ES256" }));
  t.equal(es.subject, "user_1", "ES256 is accepted too");
});

t.test("an anonymous token has no user id", async (t) => {
  const identity = await verify(await sign({ claims: { sub: "anonymous", auth: "anonymous", roles: [], rules: [] } }));
  t.equal(identity.userId, null);
  t.equal(identity.subject, "anonymous");
  t.notOk(identity.ability.can("read", "Product"));
});

t.test("invalid tokens are rejected with AssertionError", async (t) => {
  const now = Math.floor(Date.now() / 1000);
  await rejectsWith(t, sign({ claims: { aud: "billing" } }), "ASSERTION_CLAIMS_INVALID", "wrong audience");
  await rejectsWith(t, sign({ claims: { iss: "someone-else" } }), "ASSERTION_CLAIMS_INVALID", "wrong issuer");
  await rejectsWith(t, sign({ iat: now - 300, lifetime: 60 }), "ASSERTION_EXPIRED", "expired");
  await rejectsWith(t, sign({ lifetime: 3600 }), "ASSERTION_LIFETIME_TOO_LONG", "too-long lifetime");
  await rejectsWith(t, sign({ iat: now + 60 }), "ASSERTION_CLAIMS_INVALID", "issued in the future");
  await rejectsWith(t, sign({ key: impostor.privateKey }), "ASSERTION_SIGNATURE_INVALID", "bad signature");
  await rejectsWith(t, sign({ kid: "unknown-kid" }), "ASSERTION_SIGNATURE_INVALID", "unknown key id");

  const [header, , signature] = (await sign()).split(".");
  const forged = Buffer.from(JSON.stringify({ iss: "gerbang", sub: "admin", aud: "marketplace" })).toString("base64url");
  await rejectsWith(t, `${header}.${forged}.${signature}`, "ASSERTION_SIGNATURE_INVALID", "tampered payload");

  const hs = await new SignJWT({ sub: "user_1" })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer("gerbang")
    .setAudience("marketplace")
    .setIssuedAt()
    .setExpirationTime("30s")
    .sign(new TextEncoder().encode("a-shared-secret-that-is-long-enough"));
  await rejectsWith(t, hs, "ASSERTION_INVALID", "symmetric algorithm");
  await rejectsWith(t, "not-a-jwt", "ASSERTION_INVALID", "garbage");
  await rejectsWith(t, "", "ASSERTION_MISSING", "empty");
});

t.test("claim types are validated strictly", async (t) => {
  const bad: [string, JWTPayload][] = [
    ["roles as a string", { roles: "admin" }],
    ["roles with a number", { roles: ["buyer", 1] }],
    ["missing roles", { roles: undefined }],
    ["unknown auth", { auth: "password" }],
    ["anonymous auth with a user subject", { auth: "anonymous" }],
    ["anonymous subject with session auth", { sub: "anonymous" }],
    ["policy as a number", { policy: 3 }],
    ["rules not an array", { rules: { action: "manage" } }],
    ["rule not a tuple", { rules: [{ action: "read", subject: "Order" }] }],
    ["rule with a numeric subject", { rules: [["read", 5]] }],
    ["rule with array conditions", { rules: [["read", "Order", ["x"]]] }],
    ["rule with malformed conditions", { rules: [["read", "Order", { buyerId: { $in: "user_1" } }]] }],
    ["rule with a bad inverted flag", { rules: [["read", "Order", 0, true]] }],
  ];
  for (const [name, claims] of bad) {
    await rejectsWith(t, sign({ claims }), "ASSERTION_CLAIMS_INVALID", name);
  }
});

t.test("an unreachable JWKS is reported as such", async (t) => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const offline = createAssertionVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json`, audience: "marketplace" });
  await t.rejects(offline(await sign()), { name: "AssertionError", code: "ASSERTION_JWKS_UNAVAILABLE" });
});

t.test("a demo upstream with jwksUrl requires a matching assertion", async (t) => {
  const upstream = await startDemoUpstream({ jwksUrl });
  t.teardown(() => upstream.close());
  await upstream.seed({ shops: [{ id: "shop_1", name: "S", ownerId: "user_1", region: "eu" }] });
  const identityHeaders = {
    "x-gerbang-user": "user_1",
    "x-gerbang-roles": "buyer,seller",
    "x-gerbang-auth": "session",
    "x-gerbang-policy": "2024-06-01.3",
  };
  const get = async (headers: Record<string, string>, path = "/api/shops/shop_1"): Promise<[number, unknown]> => {
    const res = await fetch(upstream.url + path, { headers });
    return [res.status, await res.json()];
  };
  const rejected = [401, { error: "assertion_invalid" }];

  t.same(await get(identityHeaders), rejected, "missing assertion");
  const token = await sign();
  t.same(await get({ ...identityHeaders, "x-gerbang-assertion": "garbage" }), rejected, "garbage assertion");
  t.same(
    await get({ ...identityHeaders, "x-gerbang-user": "user_2", "x-gerbang-assertion": token }),
    rejected,
    "user header differs from sub",
  );
  t.same(
    await get({ ...identityHeaders, "x-gerbang-roles": "buyer,seller,admin", "x-gerbang-assertion": token }),
    rejected,
    "roles header differs from roles claim",
  );
  const { "x-gerbang-user": _dropped, ...withoutUser } = identityHeaders;
  t.same(await get({ ...withoutUser, "x-gerbang-assertion": token }), rejected, "missing user header is anonymous, not user_1");
  t.same(
    await get({ ...identityHeaders, "x-gerbang-assertion": await sign({ claims: { aud: "billing" } }) }),
    rejected,
    "assertion for another audience",
  );

  const [status, body] = await get({ ...identityHeaders, "x-gerbang-roles": "seller, buyer", "x-gerbang-assertion": token });
  t.equal(status, 200, "matching assertion (role order does not matter)");
  t.match(body, { id: "shop_1", gerbang: { user: "user_1", roles: ["seller", "buyer"] } });

  const anonymousToken = await sign({ claims: { sub: "anonymous", auth: "anonymous", roles: [], rules: [] } });
  const [anonStatus] = await get({ "x-gerbang-auth": "anonymous", "x-gerbang-assertion": anonymousToken }, "/api/products");
  t.equal(anonStatus, 200, "anonymous request with an anonymous assertion");

  t.same(await get({}, "/.well-known/gerbang/attributes/Shop/shop_1"), [200, { id: "shop_1", ownerId: "user_1", region: "eu" }]);
  const [receivedStatus] = await get({}, "/__demo/received");
  t.equal(receivedStatus, 200, "demo endpoints are not gated");
});

t.test("an API key's token: owner ∩ scopes, and its key claims are required", async (t) => {
  const keyClaims = { auth: "api-key", key: "key_1", scopes: ["catalog:read"], scopeRules: packRules([{ action: "read", subject: "Product" }]) };
  const identity = await verify(await sign({ claims: keyClaims }));
  t.equal(identity.authMethod, "api-key");
  t.equal(identity.key, "key_1");
  t.same(identity.scopes, ["catalog:read"]);
  t.ok(identity.ability.can("read", "Product"), "owner and scope allow it");
  t.notOk(identity.ability.can("read", subject("Order", { buyerId: "user_1" })), "the owner may, the scope does not: refused");
  t.ok(identity.ownerAbility.can("read", subject("Order", { buyerId: "user_1" })), "the owner's ability alone allows it");
  const { scopeRules: _omitted, ...withoutScopeRules } = keyClaims;
  await rejectsWith(t, sign({ claims: withoutScopeRules }), "ASSERTION_CLAIMS_INVALID", "a key token without scopeRules would be its owner");
  await rejectsWith(t, sign({ claims: { ...keyClaims, key: "" } }), "ASSERTION_CLAIMS_INVALID", "a key token without a key id");
  await rejectsWith(t, sign({ claims: { ...keyClaims, scopes: "catalog:read" } }), "ASSERTION_CLAIMS_INVALID", "scopes not an array");
  await rejectsWith(t, sign({ claims: { ...keyClaims, scopeRules: [["read"]] } }), "ASSERTION_CLAIMS_INVALID", "a malformed scope rule");
  await rejectsWith(t, sign({ claims: { scopes: ["catalog:read"] } }), "ASSERTION_CLAIMS_INVALID", "key claims on a session token");
});

t.test("a key set given in-process instead of a URL; exactly one of the two", async (t) => {
  const local = createAssertionVerifier({ jwks: { keys }, audience: "marketplace" });
  t.equal((await local(await sign())).subject, "user_1", "verified against the given keys");
  await t.rejects(local(await sign({ key: impostor.privateKey })), { code: "ASSERTION_SIGNATURE_INVALID" }, "a key not in the set is refused");
  t.throws(() => createAssertionVerifier({ audience: "marketplace" }), TypeError, "neither");
  t.throws(() => createAssertionVerifier({ jwksUrl, jwks: { keys }, audience: "marketplace" }), TypeError, "both");
});
