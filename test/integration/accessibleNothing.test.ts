// A caller with no rule over the gateway's own tables sees none of their rows. accessibleBy writes
// "no rule" as `{ OR: [] }`, which Prisma 7 reads as *no condition* once nested in an AND (as the
// key listing and the audit search nest it): the filters must say "nothing" in a form that survives.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { createTestDatabase } from "../helpers/testDatabase.ts";
import { openDatabase } from "../../src/db/openDatabase.ts";
import { auditAbilityFor, visibleEvents } from "../../src/audit/auditAbility.ts";
import { searchAudit } from "../../src/audit/searchAudit.ts";
import { accessibleKeys, keyAbilityFor } from "../../src/keys/keyAbility.ts";
import { ANONYMOUS, type Principal } from "../../src/auth/principal.ts";

const pgMissing = await serviceGate("postgres");
if (pgMissing !== false) throw new Error(`PostgreSQL is required: ${pgMissing}`);
const db = await createTestDatabase();
t.teardown(() => db.drop());
const database = await openDatabase({ url: db.url, embeddedDir: "" });
t.teardown(() => database.close());
const { prisma } = database;

await prisma.user.create({ data: { id: "u1", name: "U", email: "u1@example.test" } });
await prisma.apikey.create({ data: { id: "k1", configId: "default", referenceId: "u1", key: "hash", createdAt: new Date(), updatedAt: new Date() } });
await prisma.auditEvent.create({ data: { action: "request", authMethod: "session", roles: "user", allowed: true, reason: "ALLOWED_BY_RULE", policyVersion: "v1", principalId: "u1" } });

const user: Principal = { userId: "u1", roles: ["user"], authMethod: "session", attributes: { id: "u1" } };
const admin: Principal = { userId: "a1", roles: ["admin"], authMethod: "session", attributes: { id: "a1" } };

t.test("the audit search", async (t) => {
  t.equal((await searchAudit(prisma, {}, visibleEvents(auditAbilityFor(admin, ["admin"])))).events.length, 1, "an auditor sees the event");
  t.equal((await searchAudit(prisma, {}, visibleEvents(auditAbilityFor(user, ["admin"])))).events.length, 1, "its user sees their own event");
  t.equal((await searchAudit(prisma, {}, visibleEvents(auditAbilityFor(ANONYMOUS, ["admin"])))).events.length, 0, "a caller with no rule sees nothing");
});

t.test("the key listing", async (t) => {
  const where = (principal: Principal) => ({ AND: [accessibleKeys(keyAbilityFor(principal), "read"), {}] });
  t.equal((await prisma.apikey.findMany({ where: where(user) })).length, 1, "the owner sees their key");
  t.equal((await prisma.apikey.findMany({ where: where(ANONYMOUS) })).length, 0, "a caller with no rule sees none");
});
