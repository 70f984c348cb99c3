import type pg from "pg";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { from as copyFrom } from "pg-copy-streams";
import type { PGlite, Transaction } from "@electric-sql/pglite";

/**
 * The small SQL surface Gerbang needs outside Prisma (migrations, health checks, test setup), so the
 * same code runs on a PostgreSQL pool and on embedded PGlite.
 */
export interface SqlExecutor {
  /** One parameterized statement ($1, $2, …); values are never spliced into the text. */
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A whole script (may hold many statements) sent as one simple-protocol message; no parameters. */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` on one connection held for the whole call. Session state (advisory locks, BEGIN) is
   * per connection, so an executor backed by a pool must implement this; without it callers assume
   * the executor already is a single connection.
   */
  session?<R>(fn: (session: SqlExecutor) => Promise<R>): Promise<R>;
  /** Runs `fn` inside BEGIN/COMMIT on one connection, rolling back if `fn` throws. */
  transaction?<R>(fn: (tx: SqlExecutor) => Promise<R>): Promise<R>;
  /**
   * `COPY … FROM STDIN` with `text` as its data (PostgreSQL's text format), where the driver has it:
   * the cheapest bulk insert for both sides (about half the server's CPU per row of an INSERT that
   * reads its rows from one JSON parameter). All of it or none: COPY is one statement.
   */
  copyIn?(copySql: string, text: string): Promise<void>;
}

type PgQueryable = pg.Pool | pg.PoolClient;

function isPoolClient(client: PgQueryable): client is pg.PoolClient {
  // A checked-out client has release(); a Pool does not. instanceof would break if two copies of
  // pg end up installed.
  return typeof (client as Partial<pg.PoolClient>).release === "function";
}

function basicPg(client: PgQueryable): Pick<SqlExecutor, "query" | "exec"> {
  return {
    async query<T extends object>(sql: string, params: unknown[] = []): Promise<T[]> {
      const result = await client.query(sql, params);
      return result.rows as T[];
    },
    async exec(sql: string): Promise<void> {
      // No values array: pg then uses the simple query protocol, which accepts several statements.
      await client.query(sql);
    },
  };
}

async function pgTransaction<R>(tx: SqlExecutor, fn: (tx: SqlExecutor) => Promise<R>): Promise<R> {
  await tx.exec("BEGIN");
  let result: R;
  try {
    result = await fn(tx);
  } catch (error) {
    await tx.exec("ROLLBACK").catch(() => undefined);
    throw error;
  }
  await tx.exec("COMMIT");
  return result;
}

export function pgExecutor(client: pg.Pool | pg.PoolClient): SqlExecutor {
  const base = basicPg(client);
  if (isPoolClient(client)) {
    const executor: SqlExecutor = {
      ...base,
      session: (fn) => fn(executor),
      transaction: (fn) => pgTransaction(executor, fn),
    };
    return executor;
  }
  const pool = client;
  const session = async <R>(fn: (session: SqlExecutor) => Promise<R>): Promise<R> => {
    const connection = await pool.connect();
    // The pool stops listening while a client is checked out; a server-side disconnect during the
    // session (e.g. while polling for a lock) would otherwise be an unhandled 'error' that kills the
    // process. The next query on the client fails anyway, which is where the caller hears about it.
    const ignoreError = (): void => undefined;
    connection.on("error", ignoreError);
    let result: R;
    try {
      result = await fn(pgExecutor(connection));
    } catch (error) {
      connection.removeListener("error", ignoreError);
      // Destroy rather than reuse: the connection may still hold a lock or an open transaction.
      connection.release(error instanceof Error ? error : true);
      throw error;
    }
    connection.removeListener("error", ignoreError);
    connection.release();
    return result;
  };
  // pg's query_timeout does not reach a COPY stream: the same client-side bound, kept here.
  const copyTimeoutMs = (pool as pg.Pool & { options?: { query_timeout?: number } }).options?.query_timeout ?? 35_000;
  return {
    ...base,
    session,
    transaction: (fn) => session((s) => pgTransaction(s, fn)),
    copyIn: async (copySql, text) => {
      const connection = await pool.connect();
      const ignoreError = (): void => undefined;
      connection.on("error", ignoreError);
      const copy = connection.query(copyFrom(copySql));
      const timer = setTimeout(() => copy.destroy(new Error(`COPY did not finish within ${copyTimeoutMs} ms`)), copyTimeoutMs);
      try {
        await pipeline(Readable.from([text]), copy);
      } catch (error) {
        // The connection may be mid-COPY: never hand it to the next caller.
        connection.removeListener("error", ignoreError);
        connection.release(error instanceof Error ? error : true);
        throw error;
      } finally {
        clearTimeout(timer);
      }
      connection.removeListener("error", ignoreError);
      connection.release();
    },
  };
}

function pgliteQueryable(db: PGlite | Transaction): Pick<SqlExecutor, "query" | "exec"> {
  return {
    async query<T extends object>(sql: string, params: unknown[] = []): Promise<T[]> {
      const result = await db.query<T>(sql, params);
      return result.rows;
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
  };
}

// PGlite is one backend shared by every caller in the process, and advisory locks are re-entrant
// within a backend, so sessions are serialized here instead.
const sessionQueues = new WeakMap<PGlite, Promise<unknown>>();

export function pgliteExecutor(db: PGlite): SqlExecutor {
  const inSession: SqlExecutor = {
    ...pgliteQueryable(db),
    session: (fn) => fn(inSession),
    // PGlite's own transaction() holds its exclusive lock, so Prisma queries cannot slip in between
    // BEGIN and COMMIT as they could with BEGIN sent through exec().
    transaction: (fn) => db.transaction((tx) => fn(pgliteQueryable(tx))),
  };
  return {
    ...inSession,
    session<R>(fn: (session: SqlExecutor) => Promise<R>): Promise<R> {
      const previous = sessionQueues.get(db) ?? Promise.resolve();
      const run = previous.then(() => fn(inSession));
      sessionQueues.set(db, run.catch(() => undefined));
      return run;
    },
  };
}
