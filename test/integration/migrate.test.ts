import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import t from "tap";
import { migrate } from "../../src/db/migrate.ts";
import { openDatabase } from "../../src/db/openDatabase.ts";
import type { Database } from "../../src/db/openDatabase.ts";
import { pgExecutor, pgliteExecutor } from "../../src/db/sqlExecutor.ts";
import type { SqlExecutor } from "../../src/db/sqlExecutor.ts";
import type { PrismaClient } from "../../src/generated/prisma/client.ts";
import { serviceGate } from "../helpers/services.ts";
import { createTestDatabase, migrationsDir } from "../helpers/testDatabase.ts";

// The subtest type as tap hands it to callbacks (with its plugins), which tap does not export by name.
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const INIT = "20261126000000_init";
const API_KEYS = "20261127000000_api_keys";
const POLICY_ACTIVATION = "20261202000000_policy_activation";
const AUDIT_EXPLANATION = "20261202100000_audit_explanation";
const AUDIT_EVENTS = "20261203000000_audit_events";
const TWO_FACTOR = "20261204000000_two_factor";
const USER_ERASURE = "20261204100000_user_erasure";
const PHONE_SIGN_IN = "20261204200000_phone_sign_in";
/** Every migration after the first two, in order (the rollback test below applies them after its own). */
const LATER = [POLICY_ACTIVATION, AUDIT_EXPLANATION, AUDIT_EVENTS, TWO_FACTOR, USER_ERASURE, PHONE_SIGN_IN];
const ALL = [INIT, API_KEYS, ...LATER];
const initSql = await readFile(path.join(migrationsDir, INIT, "migration.sql"), "utf8");
const initChecksum = createHash("sha256").update(initSql).digest("hex");

const EXPECTED_TABLES = ["_prisma_migrations", "account", "apikey", "audit_checkpoint", "audit_event", "gateway_instance", "mail_outbox", "policy_activation", "session", "sms_cooldown", "sms_outbox", "two_factor", "user", "verification"];
const EXPECTED_INDEXES = [
  "account_pkey",
  "account_userId_idx",
  "apikey_configId_idx",
  "apikey_key_key",
  "apikey_pkey",
  "apikey_referenceId_idx",
  "audit_checkpoint_instance_seq_idx",
  "audit_checkpoint_pkey",
  "audit_event_action_at_idx",
  "audit_event_at_idx",
  "audit_event_denied_reason_at_idx",
  "audit_event_instance_seq_key",
  "audit_event_pkey",
  "audit_event_principal_id_at_idx",
  "audit_event_request_id_idx",
  "gateway_instance_pkey",
  "gateway_instance_seen_at_idx",
  "mail_outbox_pkey",
  "mail_outbox_to_idx",
  "policy_activation_pkey",
  "session_pkey",
  "session_token_key",
  "session_userId_idx",
  "sms_cooldown_pkey",
  "sms_outbox_pkey",
  "sms_outbox_to_idx",
  "two_factor_pkey",
  "two_factor_userId_key",
  "user_email_key",
  "user_phoneNumber_key",
  "user_pkey",
  "user_purgeAfter_idx",
  "verification_identifier_idx",
  "verification_pkey",
];

/** A temp dir removed at teardown, after `close` (databases must be closed before their files go). */
async function tempDir(t: TapTest, prefix: string, close: () => Promise<void> = async () => undefined): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(async () => {
    try {
      await close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  return dir;
}

interface HistoryRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  started_at: Date;
  applied_steps_count: number;
}

const history = (executor: SqlExecutor): Promise<HistoryRow[]> =>
  executor.query<HistoryRow>(`SELECT * FROM "_prisma_migrations" ORDER BY "started_at", "migration_name"`);

/** Migration-runner behaviour, given a factory for empty (never migrated) databases. */
async function migrationSuite(t: TapTest, emptyDatabase: (t: TapTest) => Promise<SqlExecutor>): Promise<void> {
  t.test("applies, then applies nothing", async (t) => {
    const executor = await emptyDatabase(t);
    const logged: string[] = [];
    const first = await migrate(executor, { migrationsDir, log: (msg) => logged.push(msg) });
    t.same(first.applied, ALL);
    t.match(logged, [/applying migration 20261126000000_init/, /applying migration 20261127000000_api_keys/]);
    t.same((await migrate(executor, { migrationsDir })).applied, []);

    const rows = await history(executor);
    t.equal(rows.length, ALL.length, "one row per migration");
    const [row] = rows;
    t.match(row, {
      migration_name: INIT,
      checksum: initChecksum,
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
    });
    t.ok(row?.finished_at instanceof Date, "finished_at set");
    t.match(row?.id, /^[0-9a-f-]{36}$/);

    const tables = await executor.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
    );
    t.same(
      tables.map((r) => r.table_name),
      EXPECTED_TABLES,
    );
    const indexes = await executor.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> '_prisma_migrations' ORDER BY indexname`,
    );
    t.same(
      indexes.map((r) => r.indexname),
      EXPECTED_INDEXES,
    );
    const fks = await executor.query<{ conname: string; confdeltype: string; confupdtype: string }>(
      `SELECT conname, confdeltype::text, confupdtype::text FROM pg_constraint WHERE contype = 'f' ORDER BY conname`,
    );
    t.same(fks, [
      { conname: "account_userId_fkey", confdeltype: "c", confupdtype: "c" },
      { conname: "apikey_referenceId_fkey", confdeltype: "c", confupdtype: "c" },
      { conname: "session_userId_fkey", confdeltype: "c", confupdtype: "c" },
      { conname: "two_factor_userId_fkey", confdeltype: "c", confupdtype: "c" },
    ]);
  });

  t.test("refuses a migration whose file changed after it was applied", async (t) => {
    const executor = await emptyDatabase(t);
    await migrate(executor, { migrationsDir });
    await executor.query(`UPDATE "_prisma_migrations" SET "checksum" = $1 WHERE "migration_name" = $2`, ["0".repeat(64), INIT]);
    await t.rejects(migrate(executor, { migrationsDir }), /Migration 20261126000000_init was modified after it was applied/);
    // CRLF checkouts must not count as a change, as with Prisma.
    const crlf = createHash("sha256").update(initSql.replace(/\n/g, "\r\n")).digest("hex");
    await executor.query(`UPDATE "_prisma_migrations" SET "checksum" = $1 WHERE "migration_name" = $2`, [crlf, INIT]);
    t.same((await migrate(executor, { migrationsDir })).applied, []);
  });

  t.test("records a failed migration, rolls it back and stops until resolved", async (t) => {
    const executor = await emptyDatabase(t);
    const dir = await tempDir(t, "gerbang-migrations-");
    await cp(migrationsDir, dir, { recursive: true });
    const broken = "20261128000000_broken";
    const later = "20261129000000_later";
    await mkdir(path.join(dir, broken));
    await mkdir(path.join(dir, later));
    // A semicolon inside a string and a $$ body: the script must reach the server whole.
    await writeFile(
      path.join(dir, broken, "migration.sql"),
      `CREATE TABLE "scratch" ("note" TEXT DEFAULT 'a;b');\nDO $$ BEGIN PERFORM 1; END $$;\nSELECT 1/0;\n`,
    );
    await writeFile(path.join(dir, later, "migration.sql"), `CREATE TABLE "later" ("id" INTEGER);\n`);

    await t.rejects(migrate(executor, { migrationsDir: dir }), /Migration 20261128000000_broken failed.*division by zero/);
    const failedRows = await history(executor);
    t.match(
      failedRows.map((r) => [r.migration_name, r.finished_at, r.applied_steps_count]),
      [
        [INIT, Date, 1],
        [API_KEYS, Date, 1],
        [broken, null, 0],
      ],
      "stopped after the failure",
    );
    t.match(failedRows[2]?.logs, /division by zero/);
    const [scratch] = await executor.query<{ t: string | null }>(`SELECT to_regclass('scratch')::text AS t`);
    t.equal(scratch?.t, null, "the failed migration's statements were rolled back");

    await t.rejects(migrate(executor, { migrationsDir: dir }), /Migration 20261128000000_broken is recorded as failed/);

    // What `prisma migrate resolve --rolled-back` does, then a fixed file.
    await executor.query(`UPDATE "_prisma_migrations" SET "rolled_back_at" = now() WHERE "migration_name" = $1`, [broken]);
    await writeFile(path.join(dir, broken, "migration.sql"), `CREATE TABLE "scratch" ("note" TEXT DEFAULT 'a;b');\n`);
    t.same((await migrate(executor, { migrationsDir: dir })).applied, [broken, later, ...LATER]);
    const [def] = await executor.query<{ d: string }>(
      `SELECT column_default AS d FROM information_schema.columns WHERE table_name = 'scratch' AND column_name = 'note'`,
    );
    t.equal(def?.d, "'a;b'::text");
    t.equal((await history(executor)).length, ALL.length + 3, "the rolled-back attempt keeps its row");
  });

  t.test("concurrent runs both succeed and apply once", async (t) => {
    const executor = await emptyDatabase(t);
    const results = await Promise.all([migrate(executor, { migrationsDir }), migrate(executor, { migrationsDir })]);
    t.same(results.flatMap((r) => r.applied), ALL);
    t.equal((await history(executor)).length, ALL.length);
  });
}

interface PrismaCounts {
  users: number;
  audits: number;
  mails: number;
}

async function prismaSuite(t: TapTest, prisma: PrismaClient): Promise<PrismaCounts> {
  const expiresAt = new Date(Date.now() + 3_600_000);
  const created = await prisma.user.create({
    data: {
      id: "u-ana",
      name: "Ana",
      email: "ana@example.test",
      region: "eu",
      sessions: { create: { id: "s-1", token: "token-1", expiresAt, ipAddress: "127.0.0.1" } },
    },
    include: { sessions: true },
  });
  t.equal(created.emailVerified, false);
  t.equal(created.banned, false);
  t.equal(created.sessions.length, 1);
  t.ok(created.createdAt instanceof Date);
  t.equal(created.sessions[0]?.expiresAt.getTime(), expiresAt.getTime(), "DateTime round-trips");

  await prisma.user.create({ data: { id: "u-budi", name: "Budi", email: "budi@example.test" } });
  const users = await prisma.user.findMany({ include: { sessions: true, accounts: true }, orderBy: { id: "asc" } });
  t.same(
    users.map((u) => [u.id, u.sessions.map((s) => s.token), u.accounts.length]),
    [
      ["u-ana", ["token-1"], 0],
      ["u-budi", [], 0],
    ],
  );

  await prisma.$transaction(async (tx) => {
    await tx.account.create({
      data: { id: "a-1", accountId: "u-ana", providerId: "credential", userId: "u-ana", password: "hash" },
    });
    await tx.user.update({ where: { id: "u-ana" }, data: { role: "admin" } });
  });
  await t.rejects(
    prisma.$transaction(async (tx) => {
      await tx.user.update({ where: { id: "u-ana" }, data: { role: "nobody" } });
      throw new Error("abort on purpose");
    }),
    /abort on purpose/,
  );
  const ana = await prisma.user.findUniqueOrThrow({ where: { id: "u-ana" }, include: { accounts: true } });
  t.equal(ana.role, "admin", "committed transaction kept, aborted one rolled back");
  t.equal(ana.accounts.length, 1);

  await t.rejects(
    prisma.user.create({ data: { id: "u-dup", name: "Dup", email: "ana@example.test" } }),
    { code: "P2002" },
    "unique email enforced and mapped to Prisma's error code",
  );

  const decision = await prisma.auditEvent.create({
    data: {
      action: "request",
      requestId: "req-1",
      method: "GET",
      path: "/orders/1",
      principalId: "u-ana",
      authMethod: "session",
      roles: "admin",
      allowed: true,
      reason: "matched rule",
      ruleId: "orders.read",
      policyVersion: "v1",
      upstream: "orders",
      status: 200,
    },
  });
  t.type(decision.id, "bigint");
  t.ok(decision.at instanceof Date);
  await prisma.mailOutbox.create({
    data: { to: "ana@example.test", subject: "Verify", text: "Click", kind: "verify", token: "v-1" },
  });
  const mails = await prisma.mailOutbox.findMany({ where: { to: "ana@example.test" } });
  t.equal(mails.length, 1);
  t.equal(mails[0]?.kind, "verify");

  await prisma.user.delete({ where: { id: "u-budi" } });
  await prisma.session.create({ data: { id: "s-2", token: "token-2", expiresAt, userId: "u-ana" } });
  t.equal(await prisma.session.count(), 2);
  return {
    users: await prisma.user.count(),
    audits: await prisma.auditEvent.count(),
    mails: await prisma.mailOutbox.count(),
  };
}

const skipPostgres = await serviceGate("postgres");

t.test("PostgreSQL", { skip: skipPostgres }, async (t) => {
  const emptyDatabase = async (t: TapTest): Promise<SqlExecutor> => {
    const db = await createTestDatabase({ migrate: false });
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    // A session that failed destroys its connection asynchronously; drop() may terminate it mid-close.
    pool.on("error", () => undefined);
    t.teardown(async () => {
      await pool.end();
      await db.drop();
    });
    return pgExecutor(pool);
  };

  t.test("migrate", (t) => migrationSuite(t, emptyDatabase));

  t.test("waits for the lock `prisma migrate deploy` takes", async (t) => {
    const db = await createTestDatabase({ migrate: false });
    const holder = new pg.Client({ connectionString: db.url });
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    holder.on("error", () => undefined);
    pool.on("error", () => undefined);
    t.teardown(async () => {
      await holder.end().catch(() => undefined);
      await pool.end();
      await db.drop();
    });
    await holder.connect();
    await holder.query("SELECT pg_advisory_lock(72707369)");
    const executor = pgExecutor(pool);

    await t.rejects(migrate(executor, { migrationsDir, lockTimeoutMs: 300 }), /Timed out after 300 ms waiting for the migration lock/);
    const logged: string[] = [];
    let settled = false;
    const running = migrate(executor, { migrationsDir, log: (msg) => logged.push(msg) }).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.equal(settled, false, "still waiting while another session holds the lock");
    t.match(logged, [/waiting for another instance/]);
    await holder.query("SELECT pg_advisory_unlock(72707369)");
    t.same((await running).applied, ALL);
    const [locks] = await executor.query<{ n: number }>(
      // pg_locks is cluster-wide; other test files may hold locks in their own databases.
      `SELECT count(*)::int AS n FROM pg_locks
       WHERE locktype = 'advisory' AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    t.equal(locks?.n, 0, "lock released afterwards");
  });

  t.test("openDatabase + Prisma", async (t) => {
    const db = await createTestDatabase();
    const database = await openDatabase({ url: db.url, embeddedDir: "/nonexistent", poolMax: 3 });
    t.teardown(async () => {
      await database.close();
      await db.drop();
    });
    t.equal(database.kind, "postgres");
    await database.ping();
    t.same((await migrate(database.executor, { migrationsDir })).applied, [], "createTestDatabase migrated it");
    const counts = await prismaSuite(t, database.prisma);
    t.same(counts, { users: 1, audits: 1, mails: 1 });
    await database.close();
    await t.rejects(database.ping(), "ping fails after close");
  });

  t.test("ping rejects when the server is unreachable, without leaking the password", async (t) => {
    const database = await openDatabase({
      url: "postgresql://postgres:s3cret-pw@127.0.0.1:1/nothing",
      embeddedDir: "/nonexistent",
    });
    t.teardown(() => database.close());
    const error = await database.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(error instanceof Error, "rejected");
    t.notMatch(String((error as Error).message), /s3cret-pw/);
  });
});

t.test("PGlite (embedded)", async (t) => {
  const emptyDatabase = async (t: TapTest): Promise<SqlExecutor> => {
    const opened: PGlite[] = [];
    const dir = await tempDir(t, "gerbang-pglite-", async () => {
      for (const db of opened) await db.close();
    });
    const db = await PGlite.create(dir);
    opened.push(db);
    return pgliteExecutor(db);
  };

  t.test("migrate", (t) => migrationSuite(t, emptyDatabase));

  t.test("openDatabase + Prisma, persisted across reopen", async (t) => {
    const opened: Database[] = [];
    const root = await tempDir(t, "gerbang-embedded-", async () => {
      for (const database of opened) await database.close();
    });
    const dir = path.join(root, "nested", "data");
    const database = await openDatabase({ embeddedDir: dir });
    opened.push(database);
    t.equal(database.kind, "embedded");
    await database.ping();
    t.same((await migrate(database.executor, { migrationsDir })).applied, ALL);
    const counts = await prismaSuite(t, database.prisma);
    await database.close();
    await t.rejects(database.ping(), "ping fails after close");

    const reopened = await openDatabase({ embeddedDir: dir });
    opened.push(reopened);
    t.same((await migrate(reopened.executor, { migrationsDir })).applied, []);
    t.same(
      {
        users: await reopened.prisma.user.count(),
        audits: await reopened.prisma.auditEvent.count(),
        mails: await reopened.prisma.mailOutbox.count(),
      },
      counts,
      "data survived closing and reopening the directory",
    );
  });
});
