// A throwaway PostgreSQL database with the demo marketplace's tables (prisma/marketplace), and two
// roles made for it: a reader (SELECT only, what the Prisma resolver is meant to get) and a writer
// (SELECT plus UPDATE on "order", which the resolver must refuse). Roles belong to the server, not
// the database: each call makes its own and drop() removes them.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { withDatabase } from "../../src/db/adminUrl.ts";
import { migrate } from "../../src/db/migrate.ts";
import { pgExecutor } from "../../src/db/sqlExecutor.ts";
import { testPgUrl } from "./services.ts";
import { createTestDatabase } from "./testDatabase.ts";

export interface MarketplaceTestDatabase {
  /** As the server's admin (a superuser). */
  url: string;
  name: string;
  /** A pool as the admin: the test's own view of the rows. */
  owner: pg.Pool;
  reader: string;
  writer: string;
  /** The roles' password in their URLs (the test server trusts local connections): to look for in logs. */
  password: string;
  urlAs(role: string): string;
  /** Another login role of this run (dropped with the rest); the test grants it what it needs. */
  addRole(prefix: string): Promise<string>;
  drop(): Promise<void>;
}

export async function createMarketplaceDatabase(options: { migrate?: boolean } = {}): Promise<MarketplaceTestDatabase> {
  const db = await createTestDatabase({ migrate: false });
  const owner = new pg.Pool({ connectionString: db.url, max: 2 });
  owner.on("error", () => undefined);
  if (options.migrate !== false) await migrate(pgExecutor(owner), { migrationsDir: fileURLToPath(new URL("../../prisma/marketplace/migrations", import.meta.url)) });
  const reader = `gerbang_reader_${randomBytes(4).toString("hex")}`;
  const writer = `gerbang_writer_${randomBytes(4).toString("hex")}`;
  const q = pg.escapeIdentifier;
  await owner.query(`CREATE ROLE ${q(reader)} LOGIN; CREATE ROLE ${q(writer)} LOGIN`);
  const password = `pw-${randomBytes(6).toString("hex")}`;
  const roles = [reader, writer];
  return {
    url: db.url,
    name: db.name,
    owner,
    reader,
    writer,
    password,
    urlAs(role) {
      const url = new URL(withDatabase(testPgUrl(), db.name));
      url.username = role;
      url.password = password;
      return url.toString();
    },
    async addRole(prefix) {
      const role = `${prefix}_${randomBytes(4).toString("hex")}`;
      await owner.query(`CREATE ROLE ${q(role)} LOGIN`);
      roles.push(role);
      return role;
    },
    async drop() {
      await owner.end();
      await db.drop();
      const admin = new pg.Client({ connectionString: testPgUrl() });
      await admin.connect();
      for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${q(role)}`).catch(() => undefined);
      await admin.end();
    },
  };
}

/** The grants, once the tables exist: the reader may read them all, the writer also update orders. */
export async function grantRoles(db: MarketplaceTestDatabase): Promise<void> {
  const q = pg.escapeIdentifier;
  await db.owner.query(`GRANT USAGE ON SCHEMA public TO ${q(db.reader)}, ${q(db.writer)}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${q(db.reader)}, ${q(db.writer)}; GRANT UPDATE ON "order" TO ${q(db.writer)}`);
}
