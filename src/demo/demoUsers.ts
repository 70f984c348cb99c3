/** Demo accounts with published passwords: created only in demo mode unless demo.seedUsers says so. */
export const DEMO_USERS = [
  { email: "admin@demo.gerbang.dev", password: "demo-admin-password", role: "admin", name: "Ada Admin" },
  { email: "user@demo.gerbang.dev", password: "demo-user-password", role: "user", name: "Umar User" },
  { email: "buyer@demo.gerbang.dev", password: "demo-buyer-password", role: "user", name: "Bima Buyer" },
  { email: "sales@demo.gerbang.dev", password: "demo-sales-password", role: "sales", name: "Sari Sales", attributes: { region: "eu" } },
] as const;

/**
 * The demo accounts as policy tests may name them (an email in a request case's `expect`): the roles
 * and attributes a session of theirs carries. Their ids are stand-ins (`demo:<name>`): the real ones
 * are made when the demo database is seeded.
 */
export const DEMO_PRINCIPALS: ReadonlyMap<string, { roles: string[]; attributes: Record<string, string> }> = new Map(
  DEMO_USERS.map((u) => [u.email, { roles: [u.role], attributes: { id: `demo:${u.email.split("@")[0] ?? u.role}`, email: u.email, ...("attributes" in u ? u.attributes : {}) } }]),
);
