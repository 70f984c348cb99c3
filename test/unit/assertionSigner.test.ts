import t from "tap";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSigningKey, type SigningAlgorithm } from "../../src/identity/signingKey.ts";
import { AssertionSigner } from "../../src/identity/assertionSigner.ts";
import { createAssertionVerifier } from "../../src/upstream/verifyAssertion.ts";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import type { Principal } from "../../src/auth/principal.ts";

const policy = loadPolicySet(fileURLToPath(new URL("../../policies/2026-11-26", import.meta.url)));
const userRules = policy.rulesByRole.get("user") ?? [];
const principal: Principal = { userId: "u1", roles: ["user"], authMethod: "session", attributes: { id: "u1" } };

for (const algorithm of ["EdDSA", "ES256"] as SigningAlgorithm[]) {
  t.test(`${algorithm}: signed, verifiable through the JWKS, reused, persisted`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "gerbang-keys-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const key = await loadSigningKey({ algorithm, dataDir: dir });
    t.equal(statSync(join(dir, `identity-${algorithm.toLowerCase()}.pem`)).mode & 0o777, 0o600, "private key file is 0600");
    t.equal((await loadSigningKey({ algorithm, dataDir: dir })).kid, key.kid, "the generated key is reused on restart");
    t.equal(key.publicJwk.d, undefined, "the JWKS holds no private part");

    const signer = new AssertionSigner(key, 60);
    const server = createServer((_req, res) => res.end(JSON.stringify(signer.jwks)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    const jwksUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/`;

    const token = await signer.assertionFor(principal, userRules, "2026-11-26", "marketplace");
    t.equal(await signer.assertionFor(principal, userRules, "2026-11-26", "marketplace"), token, "reused for the same principal and audience");
    t.not(await signer.assertionFor(principal, userRules, "2026-11-26", "billing"), token, "a different audience gets its own token");
    const salesRules = policy.rulesByRole.get("sales") ?? [];
    const sales: Principal = { userId: "s1", roles: ["sales"], authMethod: "session", attributes: { id: "s1", region: "eu" } };
    const euToken = await signer.assertionFor(sales, salesRules, "2026-11-26", "marketplace");
    t.not(await signer.assertionFor({ ...sales, attributes: { id: "s1", region: "apac" } }, salesRules, "2026-11-26", "marketplace"), euToken, "changed attributes get a new token");

    const identity = await createAssertionVerifier({ jwksUrl, audience: "marketplace" })(token);
    t.equal(identity.userId, "u1");
    t.same(identity.roles, ["user"]);
    t.equal(identity.policyVersion, "2026-11-26");
    t.ok(identity.expiresAt.getTime() - Date.now() <= 60_000, "lifetime ≤ 60 s");
    t.ok(identity.ability.can("update", { __caslSubjectType__: "Shop", ownerId: "u1" } as never), "rules arrive interpolated for this principal");
    t.notOk(identity.ability.can("update", { __caslSubjectType__: "Shop", ownerId: "u2" } as never));
    await t.rejects(createAssertionVerifier({ jwksUrl, audience: "billing" })(token), "audience is enforced");
  });
}
