/**
 * Rule conditions with principal placeholders, e.g. `{ ownerId: "${principal.id}" }`.
 *
 * Abilities are compiled once per (role set, policy version), so a condition cannot be interpolated
 * at compile time. Instead the compiled predicate reads the principal from a symbol-keyed slot of the
 * subject object at check time. A placeholder whose principal attribute is missing never matches:
 * a sales user without a region sees no regional orders (fail closed).
 */
export const PRINCIPAL = Symbol("gerbang.principal");

export type AttributeValue = string | number | boolean | null | readonly string[];
export type PrincipalAttributes = Readonly<Record<string, AttributeValue | undefined>>;
export type ConditionValue = string | number | boolean | null;
export type Conditions = Record<string, unknown>;

const PLACEHOLDER = /^\$\{principal\.([A-Za-z][A-Za-z0-9_]*)\}$/;
const SCALAR_OPERATORS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]);
export const ORDERING_OPERATORS: ReadonlySet<string> = new Set(["$gt", "$gte", "$lt", "$lte"]);
// Why these are refused: each would make the gateway's check and a database filter of the same rule
// (gerbang/upstream's prismaWhere, @casl/prisma accessibleBy) select different records.
export const STRING_ORDERING_REFUSED = "strings cannot be ordered in a condition: the gateway orders them by code unit, PostgreSQL by collation, so a data filter would disagree with the check";
const EXISTS_REFUSED = "$exists is refused: a database filter cannot tell an absent attribute from null (write null, or { $ne: null })";
const LIST_OPERATORS = new Set(["$in", "$nin"]);

/** Returns problems as [path, message] pairs; empty when the conditions are supported. */
export function validateConditions(conditions: unknown, principalAttributes: readonly string[], basePath: string): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (typeof conditions !== "object" || conditions === null || Array.isArray(conditions)) {
    return [[basePath, "conditions must be a mapping of field to value"]];
  }
  const checkValue = (value: unknown, path: string): void => {
    if (value !== null && !["string", "number", "boolean"].includes(typeof value)) {
      problems.push([path, "must be a string, number, boolean or null"]);
      return;
    }
    if (typeof value === "string" && value.includes("${")) {
      const match = PLACEHOLDER.exec(value);
      if (match === null) problems.push([path, `malformed placeholder ${value}`]);
      else if (!principalAttributes.includes(match[1] ?? "")) {
        problems.push([path, `unknown principal attribute ${match[1]} (known: ${principalAttributes.join(", ")})`]);
      }
    }
  };
  for (const [field, spec] of Object.entries(conditions)) {
    const path = `${basePath}/${field}`;
    if (field.startsWith("$")) {
      problems.push([path, `top-level operator ${field} is not supported`]);
      continue;
    }
    if (typeof spec !== "object" || spec === null) {
      checkValue(spec, path);
      continue;
    }
    if (Array.isArray(spec)) {
      problems.push([path, "use { $in: [...] } to match one of several values"]);
      continue;
    }
    for (const [op, operand] of Object.entries(spec)) {
      const opPath = `${path}/${op}`;
      if (SCALAR_OPERATORS.has(op)) {
        checkValue(operand, opPath);
        if (ORDERING_OPERATORS.has(op) && typeof operand === "string" && !isPlaceholder(operand)) problems.push([opPath, STRING_ORDERING_REFUSED]);
      } else if (LIST_OPERATORS.has(op)) {
        if (!Array.isArray(operand)) problems.push([opPath, `${op} takes a list`]);
        else operand.forEach((v, i) => checkValue(v, `${opPath}/${i}`));
      } else if (op === "$exists") {
        problems.push([opPath, typeof operand === "boolean" ? EXISTS_REFUSED : "$exists takes true or false"]);
      } else problems.push([opPath, `operator ${op} is not supported`]);
    }
  }
  return problems;
}

/** A `${principal.<name>}` value. */
export const isPlaceholder = (value: unknown): boolean => typeof value === "string" && PLACEHOLDER.test(value);

export function hasPlaceholder(conditions: Conditions | undefined): boolean {
  return conditions !== undefined && JSON.stringify(conditions).includes("${principal.");
}

type Resolve = (principal: PrincipalAttributes | undefined) => AttributeValue | undefined;
type Test = (actual: unknown, principal: PrincipalAttributes | undefined) => boolean;

function operand(value: unknown): Resolve {
  if (typeof value === "string") {
    const match = PLACEHOLDER.exec(value);
    if (match !== null) {
      const name = match[1] ?? "";
      return (principal) => principal?.[name];
    }
  }
  const literal = value as AttributeValue;
  return () => literal;
}

const isKnown = (v: AttributeValue | undefined): v is Exclude<AttributeValue, null | readonly string[]> =>
  v !== undefined && v !== null && !Array.isArray(v);

function compare(op: string, resolve: Resolve): Test {
  switch (op) {
    case "$eq":
      return (actual, p) => {
        const expected = resolve(p);
        // A placeholder that resolves to nothing must never match (missing attribute = no grant).
        if (expected === undefined) return false;
        return expected === null ? actual === null || actual === undefined : actual === expected;
      };
    case "$ne":
      return (actual, p) => {
        const expected = resolve(p);
        if (expected === undefined) return false;
        return expected === null ? actual !== null && actual !== undefined : actual !== expected;
      };
    default:
      return (actual, p) => {
        const expected = resolve(p);
        if (!isKnown(expected) || (typeof actual !== "number" && typeof actual !== "string")) return false;
        if (typeof actual !== typeof expected) return false;
        const [a, e] = [actual as number | string, expected as number | string];
        return op === "$gt" ? a > e : op === "$gte" ? a >= e : op === "$lt" ? a < e : a <= e;
      };
  }
}

function fieldTest(spec: unknown): Test {
  if (typeof spec !== "object" || spec === null) return compare("$eq", operand(spec));
  const tests: Test[] = Object.entries(spec).map(([op, arg]): Test => {
    if (op === "$in" || op === "$nin") {
      const items = (arg as unknown[]).map(operand);
      const inList: Test = (actual, p) => items.some((r) => {
        const v = r(p);
        return v !== undefined && v === actual;
      });
      if (op === "$in") return inList;
      // $nin with an unresolvable member cannot be decided: no match.
      return (actual, p) => items.every((r) => r(p) !== undefined) && !inList(actual, p);
    }
    if (op === "$exists") return (actual) => (actual !== undefined) === arg;
    return compare(op, operand(arg));
  });
  return (actual, p) => tests.every((t) => t(actual, p));
}

function readPath(object: Record<PropertyKey, unknown>, path: string): unknown {
  let current: unknown = object;
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** One operator of a condition as explain shows it: what was expected (placeholders resolved) and what the resource has. */
export interface ConditionCheck {
  attribute: string;
  operator: string;
  /** As written, e.g. `${principal.region}`. */
  written: unknown;
  /** With placeholders resolved for this principal (undefined: the attribute is missing, so it never matches). */
  expected: unknown;
  actual: unknown;
  met: boolean;
}

/** Each operator of `conditions` judged on its own, by the same tests the compiled rule uses. */
export function explainConditions(conditions: Conditions, resource: Record<string, unknown>, principal: PrincipalAttributes): ConditionCheck[] {
  return Object.entries(conditions).flatMap(([path, spec]) => {
    const actual = readPath(resource, path);
    const operators: Array<[string, unknown]> = typeof spec !== "object" || spec === null ? [["$eq", spec]] : Object.entries(spec);
    return operators.map(([operator, written]) => ({
      attribute: path,
      operator,
      written,
      expected: Array.isArray(written) ? written.map((w) => operand(w)(principal)) : operand(written)(principal),
      actual,
      met: fieldTest({ [operator]: written })(actual, principal),
    }));
  });
}

/** CASL conditionsMatcher: compiled once per rule by CASL, evaluated per check. */
export function compileConditions(conditions: Conditions): (object: Record<PropertyKey, unknown>) => boolean {
  const fields = Object.entries(conditions).map(([path, spec]) => [path, fieldTest(spec)] as const);
  return (object) => {
    const principal = object[PRINCIPAL] as PrincipalAttributes | undefined;
    return fields.every(([path, test]) => test(readPath(object, path), principal));
  };
}

/**
 * Resolves placeholders for one principal (for the upstream's packed rules, and so for their data
 * filters). Returns null when an attribute is missing: such a rule grants nothing to this principal,
 * as its compiled test never matches. One exception, as in the compiled test: an unresolved member
 * of `$in` is left out, and the other members still match.
 */
export function interpolateConditions(conditions: Conditions, principal: PrincipalAttributes): Conditions | null {
  const MISSING = Symbol("missing");
  const resolve = (value: unknown): unknown => {
    if (typeof value !== "string") return value;
    const match = PLACEHOLDER.exec(value);
    if (match === null) return value;
    const resolved = principal[match[1] ?? ""];
    // null is a value (it matches null); only an absent attribute is missing.
    return resolved === undefined ? MISSING : resolved;
  };
  const out: Conditions = {};
  for (const [field, spec] of Object.entries(conditions)) {
    if (typeof spec !== "object" || spec === null) {
      const value = resolve(spec);
      if (value === MISSING) return null;
      out[field] = value;
      continue;
    }
    const operators: Record<string, unknown> = {};
    for (const [op, operand] of Object.entries(spec)) {
      if (Array.isArray(operand)) {
        const members = operand.map(resolve);
        if (op !== "$in" && members.includes(MISSING)) return null;
        operators[op] = members.filter((member) => member !== MISSING);
        continue;
      }
      const value = resolve(operand);
      if (value === MISSING) return null;
      operators[op] = value;
    }
    out[field] = operators;
  }
  return out;
}
