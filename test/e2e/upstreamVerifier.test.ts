// The upstream helper against a real gateway (issue 12): an upstream that follows the README and
// checks `identity.ability` must decide as the gateway does. For an API key that is owner ∩ scopes:
// a catalog:read key of an admin is not an admin.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { assertionThrough, startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { createAssertionVerifier } from "../../src/upstream/verifyAssertion.ts";

const pgMissing = await serviceGate("postgres");
const env = await startGatewayEnv({ postgres: pgMissing === false });
t.teardown(() => env.close());
const verify = createAssertionVerifier({ jwksUrl: `${env.url}/.well-known/jwks.json`, audience: "marketplace" });

const assertionFor = (headers: Record<string, string>): Promise<string> => assertionThrough(env, headers);

t.test("an admin's catalog:read key: the helper's ability is owner ∩ scopes", async (t) => {
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const created = await fetch(`${env.url}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json", origin: env.url },
    body: JSON.stringify({ name: "catalogue feed", scopes: ["catalog:read"], expiresIn: "1d" }),
  });
  t.equal(created.status, 201, "the admin creates a key");
  const { key, id } = (await created.json()) as { key: string; id: string };
  const identity = await verify(await assertionFor({ "x-api-key": key }));
  t.equal(identity.authMethod, "api-key");
  t.equal(identity.key, id, "the key's id");
  t.same(identity.scopes, ["catalog:read"], "its scopes");
  t.ok(identity.ability.can("read", "Product"), "the key may read products: owner and scope allow it");
  t.notOk(identity.ability.can("read", "Inventory"), "the key may not read inventory: its scope does not allow it");
  t.ok(identity.ability.cannot("read", "Inventory"));
  t.notOk(identity.ability.can("access", "Admin"), "nor act as an admin");
  t.ok(identity.ownerAbility.can("read", "Inventory"), "the owner alone could (what the helper used to return)");
  t.notOk(identity.scopeAbility?.can("read", "Inventory") ?? true, "the scope ability says no");
  const inventory = await fetch(`${env.url}/api/inventory`, { headers: { "x-api-key": key } });
  t.equal(inventory.status, 403, "and the gateway decides the same");
});

t.test("a session: no key, no scopes, the roles' ability", async (t) => {
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const identity = await verify(await assertionFor({ authorization: `Bearer ${admin.token}` }));
  t.equal(identity.authMethod, "session");
  t.equal(identity.key, null);
  t.same(identity.scopes, []);
  t.equal(identity.scopeAbility, null);
  t.ok(identity.ability.can("read", "Inventory"), "the admin's session may read inventory");
});
