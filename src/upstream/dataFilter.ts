// Turns the rules of a verified assertion into a data filter: which records of a type the caller may
// act on, as a plain tree (for any ORM or SQL builder) and as a Prisma `where`. The semantics are the
// gateway's (see conditionMatcher.ts), so a list filtered by the database and a record checked with
// `can()` agree; the agreement test proves it against PostgreSQL.
import type { MongoAbility } from "@casl/ability";

export type FilterValue = string | number | boolean;
export type FilterOperator = "eq" | "gt" | "gte" | "lt" | "lte";

/**
 * `true` every record, `false` none. Every comparison but `null` is false on a record whose field is
 * null (or absent), and `not` is plain negation — so `{ not: { field: "status", op: "eq", value: "x" } }`
 * holds for a null status, as the gateway's `$ne` does.
 */
export type DataFilter =
  | boolean
  | { and: DataFilter[] }
  | { or: DataFilter[] }
  | { not: DataFilter }
  | { field: string; op: FilterOperator; value: FilterValue }
  | { field: string; op: "in"; value: FilterValue[] }
  | { field: string; op: "null" };

export class FilterError extends Error {
  readonly code = "FILTER_UNSUPPORTED";

  constructor(message: string) {
    super(message);
    this.name = "FilterError";
  }
}

const ORDERING: ReadonlySet<string> = new Set(["$gt", "$gte", "$lt", "$lte"]);

/**
 * Records every ability allows for `action` (owner's rules, and a key's scopes): their filters ANDed.
 * Inverted rules come first in CASL's priority order (the gateway sends them deny-last), so a record
 * is allowed when no deny rule matches and some allow rule does.
 */
export function filterFor(abilities: readonly MongoAbility[], action: string, subjectType: string): DataFilter {
  return simplify({ and: abilities.map((ability) => filterOfAbility(ability, action, subjectType)) });
}

function filterOfAbility(ability: MongoAbility, action: string, subjectType: string): DataFilter {
  const allows: DataFilter[] = [];
  const denies: DataFilter[] = [];
  for (const rule of ability.rulesFor(action, subjectType)) {
    const condition = rule.conditions === undefined ? true : conditionsFilter(rule.conditions as Record<string, unknown>);
    if (rule.inverted) {
      // A deny that applies after an allow would be overridden in CASL; the gateway never sends one.
      if (allows.length > 0) throw new FilterError(`an inverted rule for ${action} ${subjectType} follows an allowing rule`);
      denies.push(condition);
    } else allows.push(condition);
  }
  return simplify({ and: [{ or: allows }, { not: { or: denies } }] });
}

/** One rule's conditions (placeholders already resolved by the gateway) as a filter; throws FilterError. */
export function conditionsFilter(conditions: Record<string, unknown>): DataFilter {
  return {
    and: Object.entries(conditions).map(([field, spec]): DataFilter => {
      if (field.startsWith("$")) throw new FilterError(`top-level operator ${field} has no data filter`);
      if (!isOperatorObject(spec)) return equals(field, spec);
      return { and: Object.entries(spec).map(([op, operand]) => operatorFilter(field, op, operand)) };
    }),
  };
}

function isOperatorObject(spec: unknown): spec is Record<string, unknown> {
  return typeof spec === "object" && spec !== null && !Array.isArray(spec);
}

function operatorFilter(field: string, op: string, operand: unknown): DataFilter {
  switch (op) {
    case "$eq":
      return equals(field, operand);
    case "$ne":
      return { not: equals(field, operand) };
    case "$in":
      return oneOf(field, operand, op);
    case "$nin":
      return { not: oneOf(field, operand, op) };
    default:
      if (!ORDERING.has(op)) throw new FilterError(`operator ${op} on ${field} has no data filter`);
      // Placeholders for a missing attribute never reach here (the gateway drops such rules); a null
      // bound matches nothing, as in the gateway.
      const bound = scalar(operand);
      return bound === null || bound === undefined ? false : { field, op: op.slice(1) as FilterOperator, value: bound };
  }
}

function equals(field: string, operand: unknown): DataFilter {
  const value = scalar(operand);
  if (value === undefined) return false;
  return value === null ? { field, op: "null" } : { field, op: "eq", value };
}

function oneOf(field: string, operand: unknown, op: string): DataFilter {
  if (!Array.isArray(operand)) throw new FilterError(`${op} on ${field} takes a list`);
  const values = operand.map(scalar);
  const present = values.filter((value) => value !== null && value !== undefined);
  const withNull = values.includes(null);
  return { or: [...(present.length === 0 ? [] : [{ field, op: "in" as const, value: present }]), ...(withNull ? [equals(field, null)] : [])] };
}

/** undefined: a value no column can equal (a list attribute, an object), as in the gateway. */
function scalar(value: unknown): FilterValue | null | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return undefined;
}

/** Folds constants, so "no rule" is `false` and "no conditions" is `true`. */
export function simplify(filter: DataFilter): DataFilter {
  if (typeof filter === "boolean" || "field" in filter) return filter;
  if ("not" in filter) {
    const inner = simplify(filter.not);
    if (typeof inner === "boolean") return !inner;
    return "not" in inner ? inner.not : { not: inner };
  }
  const isAnd = "and" in filter;
  const parts = (isAnd ? filter.and : filter.or).map(simplify);
  if (parts.includes(!isAnd)) return !isAnd;
  const kept = parts.filter((part) => part !== isAnd);
  if (kept.length === 0) return isAnd;
  if (kept.length === 1) return kept[0] as DataFilter;
  return isAnd ? { and: kept } : { or: kept };
}

/** True when a record matches `filter`, with the same null rules as the database translation. */
export function matchesFilter(filter: DataFilter, record: Readonly<Record<string, unknown>>): boolean {
  if (typeof filter === "boolean") return filter;
  if ("and" in filter) return filter.and.every((part) => matchesFilter(part, record));
  if ("or" in filter) return filter.or.some((part) => matchesFilter(part, record));
  if ("not" in filter) return !matchesFilter(filter.not, record);
  const actual = readPath(record, filter.field);
  if (filter.op === "null") return actual === null || actual === undefined;
  if (filter.op === "in") return filter.value.includes(actual as FilterValue);
  const { value } = filter;
  if (filter.op === "eq") return actual === value;
  if (typeof actual !== typeof value || (typeof actual !== "number" && typeof actual !== "string")) return false;
  const [a, b] = [actual as number | string, value as number | string];
  return filter.op === "gt" ? a > b : filter.op === "gte" ? a >= b : filter.op === "lt" ? a < b : a <= b;
}

// Own properties only, so `toString` or `__proto__` in a condition never reads the prototype.
function readPath(record: Readonly<Record<string, unknown>>, path: string): unknown {
  let current: unknown = record;
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

export type PrismaWhere = Record<string, unknown>;

export interface PrismaWhereOptions {
  /**
   * The columns that may hold NULL (every other column is taken to be required). Comparisons on them
   * are written so that a NULL row is selected exactly when the gateway would allow it; Prisma refuses
   * `null` in a required column's filter, so this cannot be the default. A nullable column left out
   * makes `$eq: null` / `$ne: null` on it wrong: list every nullable column a rule may name.
   */
  nullable?: readonly string[];
  /** A scalar column of the model, used to write "no record" (`{ id: { in: [] } }`); default "id". */
  idField?: string;
}

/**
 * A Prisma `where` (`AND`/`OR`/`NOT`, as `@casl/prisma` writes them). SQL comparisons with NULL are
 * unknown and `NOT unknown` is still unknown, so every comparison on a nullable column also says
 * `not: null` — otherwise `$ne` or a deny rule would drop NULL rows the gateway allows. The result is
 * two-valued, so wrapping it in `NOT` stays exact.
 *
 * Constants are written with a column, never as `{}` or `{ OR: [] }`: Prisma 7 reads a nested
 * `{ OR: [] }` as "no condition" (`{ AND: [{ OR: [] }] }` selects every row) and `{}` inside an
 * `OR` as false, so a caller who nests this filter in its own would otherwise see everything.
 */
export function toPrismaWhere(filter: DataFilter, options: PrismaWhereOptions = {}): PrismaWhere {
  const nullable = new Set(options.nullable ?? []);
  const idField = options.idField ?? "id";
  // A required column is never null: decide those tests here, so no constant is left inside.
  const decided = simplify(withoutNullTests(filter, nullable));
  if (typeof decided === "boolean") return decided ? { NOT: { [idField]: { in: [] } } } : { [idField]: { in: [] } };
  return prismaOf(decided, false, nullable);
}

function withoutNullTests(filter: DataFilter, nullable: ReadonlySet<string>): DataFilter {
  if (typeof filter === "boolean") return filter;
  if ("and" in filter) return { and: filter.and.map((part) => withoutNullTests(part, nullable)) };
  if ("or" in filter) return { or: filter.or.map((part) => withoutNullTests(part, nullable)) };
  if ("not" in filter) return { not: withoutNullTests(filter.not, nullable) };
  return filter.op === "null" && !nullable.has(filter.field) ? false : filter;
}

function prismaOf(filter: Exclude<DataFilter, boolean>, negated: boolean, nullable: ReadonlySet<string>): PrismaWhere {
  if ("not" in filter) return prismaOf(filter.not as Exclude<DataFilter, boolean>, !negated, nullable);
  if ("and" in filter || "or" in filter) {
    const isAnd = "and" in filter !== negated;
    const parts = ("and" in filter ? filter.and : filter.or).map((part) => prismaOf(part as Exclude<DataFilter, boolean>, negated, nullable));
    return isAnd ? { AND: parts } : { OR: parts };
  }
  const { field } = filter;
  // A dotted path is a relation in Prisma (`is`/`some`), which one flat filter cannot know.
  if (field.includes(".")) throw new FilterError(`${field}: a nested attribute has no Prisma filter`);
  if (filter.op === "null") return negated ? { NOT: { [field]: null } } : { [field]: null };
  // On a nullable column `not: null` makes the comparison false (not unknown) on NULL, so a NOT
  // around it — this one, or @casl/prisma's around a deny rule — selects the NULL rows too.
  const test = { [field]: { [filter.op === "eq" ? "equals" : filter.op]: filter.value, ...(nullable.has(field) ? { not: null } : {}) } };
  return negated ? { NOT: test } : test;
}
