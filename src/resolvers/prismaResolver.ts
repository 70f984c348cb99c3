import { resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import type { Static } from "#typebox";
import { GerbangError } from "../errors/catalogue.ts";
import type { PrismaResolverSchema, UpstreamConfig } from "../config/schema.ts";
import type { Attributes, AttributeResolver, ResolveResult } from "./attributeResolver.ts";
import { ResolverCache } from "./resolverCache.ts";

export type PrismaResolverConfig = Static<typeof PrismaResolverSchema>;

export interface PrismaResolverOptions {
  timeoutMs: number;
  cacheTtlMs: number;
  cacheMaxEntries: number;
  log: (message: string) => void;
}

interface ModelDelegate {
  findUnique(args: { where: Record<string, string>; select: Record<string, true> }): Promise<Record<string, unknown> | null>;
}
interface PrismaLike {
  $disconnect(): Promise<void>;
}
type ClientClass = new (options: { adapter: unknown }) => PrismaLike;
interface Pool {
  query(text: string): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(): Promise<void>;
  on(event: "error", listener: (error: Error) => void): unknown;
}

interface SubjectLookup {
  model: string;
  delegate: ModelDelegate;
  id: string;
  select: Record<string, true>;
}

/** The demo marketplace's client (prisma/marketplace/schema.prisma), generated at install. */
const DEMO_CLIENT = "demo-marketplace";

/**
 * Can the connected role change anything, itself or through any role it is a member of (SET ROLE
 * needs no inheritance)? A superuser or a role that creates roles can; so can any write privilege on
 * a table, view or foreign table (whole or on a column), a sequence, or creating in a schema. And
 * are its transactions read-only, as this pool asks (a URL's own `options` would replace that)?
 */
const WRITE_PRIVILEGES_SQL = `
WITH me AS (SELECT oid, rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER'))
SELECT current_user AS role,
       (SELECT string_agg(r.rolname, ', ') FROM pg_roles r JOIN me ON me.oid = r.oid WHERE r.rolsuper OR r.rolcreaterole) AS privileged,
       (SELECT n.nspname || '.' || c.relname || CASE WHEN me.rolname = current_user THEN '' ELSE ' (as ' || me.rolname || ')' END
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN me
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
           AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(me.oid, c.oid, 'USAGE, UPDATE')
                    ELSE has_table_privilege(me.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') OR has_any_column_privilege(me.oid, c.oid, 'INSERT, UPDATE') END
         ORDER BY 1 LIMIT 1) AS writable,
       (SELECT n.nspname FROM pg_namespace n CROSS JOIN me
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND has_schema_privilege(me.oid, n.oid, 'CREATE')
         ORDER BY 1 LIMIT 1) AS creates_in,
       current_setting('default_transaction_read_only') AS read_only`;

const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error))
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("→") && !/^\d+ /.test(line))
    .at(-1) ?? "unknown error";

/** Prisma's Decimal (decimal.js): what distinguishes it without importing the runtime. */
const isDecimal = (value: unknown): value is { toString(): string } =>
  typeof value === "object" && value !== null && typeof (value as { toFixed?: unknown }).toFixed === "function" && typeof (value as { isFinite?: unknown }).isFinite === "function";

/** A database value as a policy attribute: what conditions compare (strings, numbers, booleans, lists, JSON). */
function attributeValue(value: unknown): unknown {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  if (value instanceof Date) return value.toISOString();
  // Numbers stay numbers (conditions compare like with like; a string would never match a number
  // rule, deny rules included): big integers and decimals to the nearest double.
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(attributeValue);
  if (value instanceof Uint8Array) return undefined;
  if (isDecimal(value)) {
    const number = Number(value.toString());
    return Number.isFinite(number) ? number : undefined;
  }
  // A Json column is plain data already; anything else is not an attribute a condition can read.
  return typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype ? value : undefined;
}

/**
 * Reads resource attributes from the business database itself (a read-only role), for deployments
 * where the gateway may: one query by the configured unique field, selecting only the configured
 * attributes. Answers are cached and invalidated after writes exactly like the HTTP resolver's.
 * Every failure is the gateway's 502/504: it never decides on attributes it could not read.
 */
export class PrismaResolver implements AttributeResolver {
  private readonly cache: ResolverCache;
  private readonly subjects: ReadonlyMap<string, SubjectLookup>;
  private readonly client: PrismaLike;
  private readonly pool: Pool;
  private readonly options: PrismaResolverOptions;
  private readonly upstreamName: string;

  private constructor(upstreamName: string, client: PrismaLike, pool: Pool, subjects: ReadonlyMap<string, SubjectLookup>, options: PrismaResolverOptions) {
    this.upstreamName = upstreamName;
    this.client = client;
    this.pool = pool;
    this.subjects = subjects;
    this.options = options;
    this.cache = new ResolverCache(options);
  }

  /**
   * Connects and checks everything before the gateway serves: the role is read-only (unless told
   * otherwise), and every configured model, id and attribute exists — by one probe query each,
   * so a typo is a start-up error, not a 502 on the first request.
   */
  static async open(upstreamName: string, config: PrismaResolverConfig, options: PrismaResolverOptions): Promise<PrismaResolver> {
    const where = `upstreams[${upstreamName}].resolver.prisma`;
    const [{ default: pg }, { PrismaPg }, PrismaClient] = await Promise.all([import("pg"), import("@prisma/adapter-pg"), loadClient(config.client, where)]);
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: config.poolMax,
      connectionTimeoutMillis: Math.max(options.timeoutMs, 1000),
      statement_timeout: options.timeoutMs,
      query_timeout: options.timeoutMs + 1000,
      // Read-only whatever the role may do: a write through this pool fails in PostgreSQL itself.
      options: "-c default_transaction_read_only=on",
    }) as unknown as Pool;
    pool.on("error", (error) => options.log(`${where}: idle connection failed: ${error.message}`));
    const client = new PrismaClient({ adapter: new PrismaPg(pool as never) });
    try {
      await refuseWriters(pool, where, config.requireReadOnly);
      const subjects = new Map<string, SubjectLookup>();
      for (const [subject, spec] of Object.entries(config.subjects)) {
        const delegate = (client as unknown as Record<string, unknown>)[spec.model.charAt(0).toLowerCase() + spec.model.slice(1)] as ModelDelegate | undefined;
        if (typeof delegate?.findUnique !== "function") throw new Error(`${where}.subjects.${subject}: the client has no model ${spec.model}`);
        const lookup: SubjectLookup = { model: spec.model, delegate, id: spec.id ?? "id", select: Object.fromEntries(spec.attributes.map((a) => [a, true as const])) };
        try {
          await lookup.delegate.findUnique({ where: { [lookup.id]: "gerbang-probe" }, select: lookup.select });
        } catch (error) {
          throw new Error(`${where}.subjects.${subject}: ${spec.model} cannot be read by ${lookup.id} with attributes ${spec.attributes.join(", ")}: ${firstLine(error)} (the id must be a String @id or @unique field, each attribute a field of the model, and the role needs SELECT)`);
        }
        subjects.set(subject, lookup);
      }
      return new PrismaResolver(upstreamName, client, pool, subjects, options);
    } catch (error) {
      await client.$disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
      throw error;
    }
  }

  /** Read by the metrics at scrape time. */
  get stats(): { hits: number; misses: number } {
    return this.cache.stats;
  }

  handles(subject: string): boolean {
    return this.subjects.has(subject);
  }

  async resolve(_upstream: UpstreamConfig, subject: string, id: string, options: { fresh?: boolean } = {}): Promise<ResolveResult> {
    const lookup = this.subjects.get(subject);
    if (lookup === undefined) throw new GerbangError("INTERNAL_ERROR");
    return this.cache.get(`${subject}\u0000${id}`, options.fresh === true, () => this.read(lookup, id));
  }

  invalidate(_upstream: UpstreamConfig, subject: string, id: string): void {
    this.cache.forget(`${subject}\u0000${id}`);
  }

  /** Is the business database answering? For /readyz (not critical: only resolver endpoints need it). */
  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.client.$disconnect().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  private async read(lookup: SubjectLookup, rawId: string): Promise<ResolveResult> {
    let id: string;
    try {
      // The path parameter arrives percent-encoded (canonical form); the column holds the value.
      id = decodeURIComponent(rawId);
    } catch {
      return { found: false };
    }
    // PostgreSQL text cannot hold NUL: no row has such an id (and the query would fail, not miss).
    if (id.includes("\u0000")) return { found: false };
    let row: Record<string, unknown> | null;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new GerbangError("UPSTREAM_TIMEOUT")), this.options.timeoutMs);
      });
      row = await Promise.race([lookup.delegate.findUnique({ where: { [lookup.id]: id }, select: lookup.select }), timeout]);
    } catch (error) {
      if (error instanceof GerbangError) throw error;
      // The message only: a driver error never carries the URL's password, but may carry data.
      this.options.log(`upstreams[${this.upstreamName}].resolver.prisma: ${lookup.model} lookup failed: ${firstLine(error).slice(0, 200)}`);
      throw new GerbangError("RESOLVER_FAILED", { reason: "DATABASE" });
    } finally {
      clearTimeout(timer);
    }
    if (row === null) return { found: false };
    const attributes: Attributes = {};
    for (const [name, value] of Object.entries(row)) {
      const converted = attributeValue(value);
      if (converted !== undefined) attributes[name] = converted;
    }
    return { found: true, attributes };
  }
}

async function loadClient(spec: string, where: string): Promise<ClientClass> {
  const url = spec === DEMO_CLIENT ? new URL("../generated/marketplace/client.ts", import.meta.url) : pathToFileURL(resolvePath(spec));
  let loaded: { PrismaClient?: unknown };
  try {
    loaded = (await import(url.href)) as { PrismaClient?: unknown };
  } catch (error) {
    throw new Error(`${where}.client: ${spec} could not be loaded: ${firstLine(error)}`, { cause: error });
  }
  if (typeof loaded.PrismaClient !== "function") throw new Error(`${where}.client: ${spec} does not export PrismaClient`);
  return loaded.PrismaClient as ClientClass;
}

async function refuseWriters(pool: Pool, where: string, requireReadOnly: boolean): Promise<void> {
  let row: Record<string, unknown> | undefined;
  try {
    ({ rows: [row] } = await pool.query(WRITE_PRIVILEGES_SQL));
  } catch (error) {
    throw new Error(`${where}: the business database could not be checked: ${firstLine(error)}`, { cause: error });
  }
  const role = String(row?.role ?? "?");
  // Whatever the role may do, this pool's transactions must be read-only: a URL whose `options`
  // replaced the setting (or a pooler that dropped it) is refused.
  if (row?.read_only !== "on") throw new Error(`${where}: connections are not read-only (default_transaction_read_only is ${String(row?.read_only)}); remove options from the URL, or let the pooler pass startup options`);
  if (!requireReadOnly) return;
  const fix = "give the resolver a read-only role (GRANT SELECT only; see docs/policies.md#prisma-resolver), or set requireReadOnly: false";
  if (typeof row?.privileged === "string") throw new Error(`${where}: the role ${role} is, or may become, a superuser or role creator (${row.privileged}); ${fix}`);
  if (typeof row?.writable === "string") throw new Error(`${where}: the role ${role} may write ${row.writable}; ${fix}`);
  if (typeof row?.creates_in === "string") throw new Error(`${where}: the role ${role} may create objects in schema ${row.creates_in}; ${fix}`);
}
