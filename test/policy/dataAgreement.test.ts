// can() == the database's filter (issue 17). For every shipped policy version and a random policy
// corpus, four answers to "which records may this principal act on" must be the same set:
//   1. the gateway's decision (its own ability, principal placeholders resolved at check time);
//   2. the upstream helper's `identity.ability.can()` on the assertion the gateway signs;
//   3. PostgreSQL, through `identity.prismaWhere()` on the demo marketplace's own schema;
//   4. PostgreSQL, through @casl/prisma `accessibleBy` over the same rules as Prisma conditions.
// Conditions `policy validate` refuses are allowed to disagree: that is why they are refused.
import t from "tap";
import fc from "fast-check";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { subject as asSubject } from "@casl/ability";
import type { MongoAbility } from "@casl/ability";
import { accessibleBy, createCaslExtension, createPrismaAbility } from "@casl/prisma/runtime";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../../src/generated/marketplace/client.ts";
import { serviceGate } from "../helpers/services.ts";
import { createTestDatabase } from "../helpers/testDatabase.ts";
import { migrate } from "../../src/db/migrate.ts";
import { pgExecutor } from "../../src/db/sqlExecutor.ts";
import { loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { AbilityCache } from "../../src/policy/abilityCache.ts";
import { compileAbility } from "../../src/policy/compileAbility.ts";
import { evaluateWithin } from "../../src/policy/evaluate.ts";
import { validateConditions } from "../../src/policy/conditions.ts";
import { ruleSubjectProblems } from "../../src/policy/subjectSchema.ts";
import type { RawPolicyRule } from "../../src/policy/policySet.ts";
import type { SubjectSpec } from "../../src/policy/schema.ts";
import type { Principal } from "../../src/auth/principal.ts";
import { loadSigningKey } from "../../src/identity/signingKey.ts";
import { AssertionSigner } from "../../src/identity/assertionSigner.ts";
import { createAssertionVerifier } from "../../src/upstream/verifyAssertion.ts";
import type { VerifiedIdentity } from "../../src/upstream/verifyAssertion.ts";
import { conditionsFilter, toPrismaWhere } from "../../src/upstream/dataFilter.ts";

const pgMissing = await serviceGate("postgres");
if (pgMissing !== false) throw new Error(`PostgreSQL is required: ${pgMissing}`);

const db = await createTestDatabase({ migrate: false });
t.teardown(() => db.drop());
const pool = new pg.Pool({ connectionString: db.url, max: 4 });
pool.on("error", () => undefined);
await migrate(pgExecutor(pool), { migrationsDir: fileURLToPath(new URL("../../prisma/marketplace/migrations", import.meta.url)) });
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
t.teardown(async () => {
  await prisma.$disconnect();
  await pool.end();
});

// Owned and not owned, every region and none, every status, null and set optional fields.
const USERS = ["u1", "u2"];
const REGIONS = ["eu", "apac", null];
const orders = USERS.flatMap((buyerId) =>
  REGIONS.flatMap((region) =>
    ["pending", "shipped"].flatMap((status) =>
      [null, "fragile"].flatMap((notes) =>
        [1, 5].map((quantity) => ({
          id: `o-${buyerId}-${region ?? "none"}-${status}-${notes ?? "none"}-${quantity}`,
          buyerId,
          productId: "p1",
          quantity,
          region,
          status,
          shippingAddress: quantity === 1 ? null : "Jl. Sawah 1",
          notes,
        })),
      ),
    ),
  ),
);
const shops = USERS.flatMap((ownerId) => REGIONS.map((region) => ({ id: `s-${ownerId}-${region ?? "none"}`, name: "Tani", ownerId, region })));
const products = [{ id: "p1", shopId: "s-u1-eu", name: "Beras", priceCents: 1200 }, { id: "p2", shopId: "s-u2-apac", name: "Kopi", priceCents: 50 }];
const inventory = [{ productId: "p1", shopId: "s-u1-eu", quantity: 3 }, { productId: "p2", shopId: "s-u2-apac", quantity: 0 }];
await prisma.order.createMany({ data: orders });
await prisma.shop.createMany({ data: shops });
await prisma.product.createMany({ data: products });
await prisma.inventory.createMany({ data: inventory });

type Model = "Order" | "Shop" | "Product" | "Inventory";
const NULLABLE: Record<Model, string[]> = { Order: ["region", "shippingAddress", "notes"], Shop: ["region"], Product: [], Inventory: [] };
const prismaOptions = (model: Model): { nullable: string[]; idField: string } => ({ nullable: NULLABLE[model], idField: model === "Inventory" ? "productId" : "id" });
const idOf = (model: Model, row: Record<string, unknown>): string => String(model === "Inventory" ? row.productId : row.id);
// CASL's answer to Prisma 7 reading a nested `{ OR: [] }` as "no condition" (what accessibleBy
// returns for "no rule"): its extension turns any such query into one that selects nothing.
const caslPrisma = prisma.$extends(createCaslExtension());
const rowsOf = async (model: Model, where: Record<string, unknown>, client: typeof prisma | typeof caslPrisma = prisma): Promise<Array<Record<string, unknown>>> => {
  // The where objects are built at run time, so they are checked by Prisma, not by the compiler.
  const args = { where } as never;
  if (model === "Order") return client.order.findMany(args);
  if (model === "Shop") return client.shop.findMany(args);
  if (model === "Product") return client.product.findMany(args);
  return client.inventory.findMany(args);
};
const allRows: Record<Model, Array<Record<string, unknown>>> = { Order: orders, Shop: shops, Product: products, Inventory: inventory };

// A real signer and a JWKS the helper fetches, as an upstream would.
const keyDir = mkdtempSync(join(tmpdir(), "gerbang-agreement-"));
t.teardown(() => rmSync(keyDir, { recursive: true, force: true }));
const signer = new AssertionSigner(await loadSigningKey({ algorithm: "EdDSA", dataDir: keyDir }), 60);
const jwks = createServer((_req, res) => res.end(JSON.stringify(signer.jwks)));
await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
t.teardown(() => new Promise<void>((resolve) => jwks.close(() => resolve())));
const verify = createAssertionVerifier({ jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/`, audience: "marketplace" });

const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

/** CASL's own Prisma path: the helper's rules with conditions as Prisma wheres, then accessibleBy. */
function caslWhere(abilities: readonly MongoAbility[], action: string, model: Model): Record<string, unknown> {
  const parts = abilities.map((ability) => {
    const rules = ability.rules.map((rule) => ({
      ...rule,
      ...(rule.conditions === undefined ? {} : { conditions: toPrismaWhere(conditionsFilter(rule.conditions as Record<string, unknown>), prismaOptions(model)) }),
    }));
    return accessibleBy(createPrismaAbility(rules as never), action).ofType(model as never) as Record<string, unknown>;
  });
  return { AND: parts };
}

interface Case {
  label: string;
  principal: Principal;
  rules: readonly RawPolicyRule[];
  scopeRules?: readonly RawPolicyRule[];
}

/** The four answers for every action on every model; returns the disagreements. */
async function disagreements(c: Case, actionsOf: ReadonlyMap<Model, readonly string[]>, version: string): Promise<string[]> {
  const ability = compileAbility(c.rules);
  const scope = c.scopeRules === undefined ? null : compileAbility(c.scopeRules);
  const identity: VerifiedIdentity = await verify(await signer.assertionFor(c.principal, c.rules, version, "marketplace", c.scopeRules));
  const abilities = identity.scopeAbility === null ? [identity.ownerAbility] : [identity.ownerAbility, identity.scopeAbility];
  const found: string[] = [];
  for (const [model, actions] of actionsOf) {
    for (const action of actions) {
      const rows = allRows[model];
      const gateway = sorted(rows.filter((row) => evaluateWithin(ability, scope, { action, subject: model, resource: row, principal: c.principal.attributes }).allowed).map((row) => idOf(model, row)));
      const helper = sorted(rows.filter((row) => identity.ability.can(action, asSubject(model, { ...row }))).map((row) => idOf(model, row)));
      const where = identity.prismaWhere(action, model, prismaOptions(model));
      const database = sorted((await rowsOf(model, where)).map((row) => idOf(model, row)));
      // A service nests the filter in its own query; Prisma must read it the same there.
      const nested = sorted((await rowsOf(model, { AND: [where, { OR: [where] }] })).map((row) => idOf(model, row)));
      const casl = sorted((await rowsOf(model, caslWhere(abilities, action, model), caslPrisma)).map((row) => idOf(model, row)));
      const at = `${c.label}: ${action} ${model}`;
      if (helper.join() !== gateway.join()) found.push(`${at}: helper can() ${JSON.stringify(helper)} vs gateway ${JSON.stringify(gateway)}`);
      if (database.join() !== gateway.join()) found.push(`${at}: prismaWhere ${JSON.stringify(where)} selects ${JSON.stringify(database)} vs gateway ${JSON.stringify(gateway)}`);
      if (nested.join() !== gateway.join()) found.push(`${at}: prismaWhere nested selects ${JSON.stringify(nested)} vs gateway ${JSON.stringify(gateway)}`);
      if (casl.join() !== gateway.join()) found.push(`${at}: accessibleBy selects ${JSON.stringify(casl)} vs gateway ${JSON.stringify(gateway)}`);
    }
  }
  return found;
}

const policiesDir = fileURLToPath(new URL("../../policies", import.meta.url));
const MODELS: readonly Model[] = ["Order", "Shop", "Product", "Inventory"];

for (const version of readdirSync(policiesDir).sort()) {
  t.test(`policy version ${version}: every role, attribute value and key scope`, async (t) => {
    const policy = loadPolicySet(join(policiesDir, version));
    const cache = new AbilityCache(policy);
    const actionsOf = new Map<Model, readonly string[]>(MODELS.map((model) => [model, ["create", "read", "update", "delete", "createProduct"]]));
    const roles = [...policy.rulesByRole.keys()];
    const cases: Case[] = [];
    for (const role of roles) {
      for (const id of role === "anonymous" ? [null] : USERS) {
        for (const region of ["eu", "apac", null, undefined]) {
          const attributes = id === null ? {} : { id, email: `${id}@example.test`, ...(region === undefined ? {} : { region }) };
          const base: Principal = { userId: id, roles: [role], authMethod: id === null ? "anonymous" : "session", attributes };
          cases.push({ label: `${role} ${id ?? "anonymous"} region=${String(region)}`, principal: base, rules: cache.get([role]).rules });
          if (id !== null) {
            for (const scopes of [[...policy.scopes.keys()], ...[...policy.scopes.keys()].map((s) => [s])]) {
              cases.push({
                label: `${role} key [${scopes.join(",")}] region=${String(region)}`,
                principal: { ...base, authMethod: "api-key", key: { id: `key-${id}`, tier: "standard", scopes } },
                rules: cache.get([role]).rules,
                scopeRules: cache.forScopes(scopes).rules,
              });
            }
          }
        }
      }
    }
    const found: string[] = [];
    for (const c of cases) found.push(...(await disagreements(c, actionsOf, version)));
    t.same(found.slice(0, 5), [], `${cases.length} principals agree on every action and model (${found.length} disagreements)`);
  });
}

// The random corpus: rules on Order over every operator the policy language has (and some it
// refuses), literal and placeholder operands, allow and deny, for random principals.
const ORDER_SUBJECT: SubjectSpec = {
  name: "Order",
  actions: ["read"],
  attributes: { id: "string", buyerId: "string", region: "string", status: "string", shippingAddress: "string", notes: "string", quantity: "number" },
} as SubjectSpec;
const SUBJECTS = new Map([["Order", ORDER_SUBJECT]]);
const PRINCIPAL_ATTRIBUTES = ["id", "region", "level"];

const stringField = fc.constantFrom("buyerId", "region", "status", "notes", "shippingAddress");
const stringValue = fc.constantFrom("u1", "u2", "eu", "apac", "pending", "shipped", "fragile", "Jl. Sawah 1", null, "${principal.id}", "${principal.region}");
const numberValue = fc.constantFrom(0, 1, 3, 5, 9, null, "${principal.level}");
const fieldCondition = fc.oneof(
  fc.tuple(stringField, stringValue).map(([f, v]) => [f, v] as const),
  fc.tuple(stringField, fc.constantFrom("$eq", "$ne"), stringValue).map(([f, op, v]) => [f, { [op]: v }] as const),
  fc.tuple(stringField, fc.constantFrom("$in", "$nin"), fc.array(stringValue, { maxLength: 3 })).map(([f, op, v]) => [f, { [op]: v }] as const),
  fc.tuple(fc.constant("quantity"), fc.constantFrom("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"), numberValue).map(([f, op, v]) => [f, { [op]: v }] as const),
  fc.tuple(fc.constant("quantity"), fc.constantFrom("$in", "$nin"), fc.array(numberValue, { maxLength: 3 })).map(([f, op, v]) => [f, { [op]: v }] as const),
  // Refused by validate: string ordering (code units vs collation) and $exists (absent vs NULL).
  fc.tuple(stringField, fc.constantFrom("$gt", "$lte"), stringValue).map(([f, op, v]) => [f, { [op]: v }] as const),
  fc.tuple(fc.constantFrom("notes", "quantity"), fc.boolean()).map(([f, v]) => [f, { $exists: v }] as const),
);
const ruleArb = fc.record({
  conditions: fc.option(fc.array(fieldCondition, { minLength: 1, maxLength: 3 }).map((pairs) => Object.fromEntries(pairs)), { nil: undefined }),
  inverted: fc.boolean(),
});
const principalArb = fc.record({
  id: fc.constantFrom("u1", "u2"),
  region: fc.constantFrom("eu", "apac", null, undefined),
  level: fc.constantFrom(1, 3, 5, undefined),
});

t.test("a random policy corpus: whatever validate accepts, the four answers agree", async (t) => {
  let accepted = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(ruleArb, { minLength: 1, maxLength: 4 }), principalArb, async (specs, who) => {
      const rules: RawPolicyRule[] = specs.map((spec, i) => ({
        id: `r${i}`,
        role: "user",
        action: "read",
        subject: "Order",
        ...(spec.conditions === undefined ? {} : { conditions: spec.conditions }),
        ...(spec.inverted ? { inverted: true } : {}),
      }));
      const problems = rules.flatMap((rule, i) => [
        ...validateConditions(rule.conditions ?? {}, PRINCIPAL_ATTRIBUTES, `/rules/${i}/conditions`),
        ...ruleSubjectProblems(SUBJECTS, rule, `/rules/${i}`),
      ]);
      if (problems.length > 0) {
        refused += 1;
        return;
      }
      accepted += 1;
      const attributes = Object.fromEntries(Object.entries(who).filter(([, v]) => v !== undefined));
      const principal: Principal = { userId: who.id, roles: ["user"], authMethod: "session", attributes };
      const found = await disagreements({ label: JSON.stringify({ rules, attributes }), principal, rules }, new Map([["Order", ["read"]]]), "random");
      if (found.length > 0) throw new Error(found.slice(0, 3).join("\n"));
    }),
    { numRuns: 1000 },
  );
  t.ok(accepted > 50, `most generated corpora are valid (${accepted} accepted, ${refused} refused)`);
  t.ok(refused > 0, "and the refused operators were generated too");
});

t.test("what validate refuses, and why", async (t) => {
  const reasons = (conditions: Record<string, unknown>): string[] => [
    ...validateConditions(conditions, PRINCIPAL_ATTRIBUTES, "/c").map(([, reason]) => reason),
    ...ruleSubjectProblems(SUBJECTS, { id: "r", role: "user", action: "read", subject: "Order", conditions }, "/r").map(([, reason]) => reason),
  ];
  t.match(reasons({ notes: { $exists: false } }), [/\$exists.*cannot tell an absent attribute from null/]);
  t.match(reasons({ status: { $gt: "m" } }), [/strings.*order/]);
  t.match(reasons({ region: { $lte: "${principal.region}" } }), [/Order\.region is a string.*order/]);
  t.same(reasons({ quantity: { $gt: 3, $lte: "${principal.level}" }, status: { $ne: "shipped" }, region: { $nin: ["eu", null] } }), [], "numbers may be ordered; $ne and $nin agree");
});
