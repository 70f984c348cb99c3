import { mkdir } from "node:fs/promises";
import type { PGlite } from "@electric-sql/pglite";
import { PrismaClient } from "../generated/prisma/client.ts";
import { pgExecutor, pgliteExecutor } from "./sqlExecutor.ts";
import { acquireEmbeddedLock } from "./embeddedLock.ts";
import type { SqlExecutor } from "./sqlExecutor.ts";

export interface Database {
  kind: "postgres" | "embedded";
  prisma: PrismaClient;
  executor: SqlExecutor;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL connection URL; without it an embedded PGlite database in `embeddedDir` is used. */
  url?: string;
  embeddedDir: string;
  poolMax?: number;
  /**
   * Server-side limit per statement (default 30 s; 0 disables it and the client-side backstop). A
   * process that runs long migrations, such as `gerbang migrate`, may want 0.
   */
  statementTimeoutMs?: number;
  /**
   * `url` is a transaction-mode pooler (PgBouncer): no session-level startup parameters, which it
   * refuses; the statement limit is then enforced by the client alone (and belongs on the role).
   */
  transactionPooler?: boolean;
  /** Embedded: how long to wait while a short CLI command holds the database (a gateway's hold is never waited for). */
  lockWaitMs?: number;
  /** Receives pool errors that have no query to fail (e.g. an idle connection dropped by the server). */
  log?: (msg: string) => void;
}

const CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
// Client-side margin over statement_timeout: the server normally cancels first and keeps the
// connection usable; this only fires when the server stops answering altogether.
const CLIENT_TIMEOUT_MARGIN_MS = 5_000;
const PING_TIMEOUT_MS = 5_000;

// Shutdown paths (signal handlers, test teardown) may close twice; pg.Pool#end throws the second time.
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Each kind loads only its own driver: a CLI command on PostgreSQL never pays for the PGlite WASM build.
async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<Database> {
  const [{ default: pg }, { PrismaPg }] = await Promise.all([import("pg"), import("@prisma/adapter-pg")]);
  const statementTimeout = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    ...(statementTimeout > 0 && options.transactionPooler !== true ? { statement_timeout: statementTimeout } : {}),
    ...(statementTimeout > 0 ? { query_timeout: statementTimeout + CLIENT_TIMEOUT_MARGIN_MS } : {}),
  });
  // Without a listener, an idle connection dropped by the server (restart, failover) crashes the
  // process with an unhandled 'error' event. pg's messages never include the connection password.
  pool.on("error", (error) => options.log?.(`database pool: idle connection failed: ${error.message}`));
  // adapter-pg keeps an external Pool as is (it checks `instanceof pg.Pool`) and leaves ending it to us.
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    kind: "postgres",
    prisma,
    executor: pgExecutor(pool),
    async ping() {
      // Health checks must answer quickly even where ordinary queries may run for longer.
      await withTimeout(pool.query("SELECT 1"), PING_TIMEOUT_MS, "database ping timed out");
    },
    close: once(async () => {
      try {
        await prisma.$disconnect();
      } finally {
        await pool.end();
      }
    }),
  };
}

async function openEmbedded(dir: string, options: OpenDatabaseOptions): Promise<Database> {
  await mkdir(dir, { recursive: true });
  // PGlite is single-process: a second opener would work on a diverging copy and lose writes.
  const release = await acquireEmbeddedLock(dir, { waitForCommandsMs: options.lockWaitMs ?? 10_000 });
  let db: PGlite;
  try {
    const { PGlite } = await import("@electric-sql/pglite");
    db = await PGlite.create(dir);
  } catch (error) {
    release();
    throw error;
  }
  const { PrismaPGlite } = await import("pglite-prisma-adapter");
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  return {
    kind: "embedded",
    prisma,
    executor: pgliteExecutor(db),
    async ping() {
      await db.query("SELECT 1");
    },
    close: once(async () => {
      try {
        await prisma.$disconnect();
      } finally {
        try {
          await db.close();
        } finally {
          release();
        }
      }
    }),
  };
}

/** Opens PostgreSQL when a URL is configured, otherwise the file-backed embedded database. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return options.url !== undefined && options.url !== ""
    ? openPostgres(options.url, options)
    : openEmbedded(options.embeddedDir, options);
}
