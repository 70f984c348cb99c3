// Which roles a credential acts with when some need a second factor (auth.twoFactor.requiredForRoles).
import t from "tap";
import fc from "fast-check";
import { rolesForCredential } from "../../src/auth/principal.ts";

const ROLE = fc.constantFrom("admin", "user", "sales", "partner", "auditor");

t.test("with the factor, or nothing required: every held role, nothing withheld", async (t) => {
  t.same(rolesForCredential(["admin"], new Set(["admin"]), true), { roles: ["admin"] });
  t.same(rolesForCredential(["admin", "sales"], new Set(), false), { roles: ["admin", "sales"] });
});

t.test("without it: the roles that need it are withheld, the user keeps at least the user role", async (t) => {
  t.same(rolesForCredential(["admin"], new Set(["admin"]), false), { roles: ["user"], withheldRoles: ["admin"], heldRoles: ["admin"] });
  t.same(rolesForCredential(["admin", "sales"], new Set(["admin"]), false), { roles: ["sales", "user"], withheldRoles: ["admin"], heldRoles: ["admin", "sales"] });
  t.same(rolesForCredential(["user", "sales"], new Set(["sales"]), false), { roles: ["user"], withheldRoles: ["sales"], heldRoles: ["user", "sales"] }, "per role: sales may need it too");
  t.same(rolesForCredential(["user"], new Set(["admin"]), false), { roles: ["user"] }, "nothing to withhold");
});

t.test("property: no withheld role is ever exercised, and nothing else is lost", async (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(ROLE, { maxLength: 5 }), fc.uniqueArray(ROLE, { maxLength: 5 }), fc.boolean(), (held, required, factor) => {
      const need = new Set<string>(required);
      const result = rolesForCredential(held, need, factor);
      const withheld = result.withheldRoles ?? [];
      if (factor) return withheld.length === 0 && result.roles.join() === held.join();
      for (const role of result.roles) if (need.has(role) && role !== "user") return false;
      for (const role of held) if (!need.has(role) && !result.roles.includes(role)) return false;
      return withheld.every((r) => (held as readonly string[]).includes(r) && need.has(r)) && (withheld.length === 0 || result.heldRoles?.join() === held.join());
    }),
  );
  t.pass("held for every generated case");
});
