import { subject as asSubject } from "@casl/ability";
import { PRINCIPAL, type PrincipalAttributes } from "./conditions.ts";
import type { PolicyAbility } from "./compileAbility.ts";

/** Where the records of a masked answer are: the whole body, or one property of an envelope. */
export interface MaskTarget {
  subject: string;
  /** `{ "orders": [...], "next": "…" }` with at "orders": only that property holds records. */
  at?: string;
}

export type MaskOutcome =
  | { ok: true; body: unknown; removedFields: number; removedRecords: number }
  | { ok: false; reason: "NOT_RECORDS" };

/**
 * Nesting deeper than this is removed: no policy names fields of it, and a deny rule's wildcard
 * could reach it, so removal is the safe side.
 */
const MAX_DEPTH = 32;
/** CASL's own marker of a subject's type: data that carries it would make CASL refuse the record. */
const CASL_TYPE_KEY = "__caslSubjectType__";

type Plain = Record<string, unknown>;
const isPlain = (value: unknown): value is Plain => typeof value === "object" && value !== null && !Array.isArray(value);
type Rule = ReturnType<PolicyAbility["rulesFor"]>[number];

/**
 * Per ability, a path is allowed, denied (an inverted rule names it or a parent) or unset (no rule
 * names it: as its parent was, unreadable at the top).
 */
type Verdict = "allowed" | "denied" | "unset";
type Readable = (path: string, inherited: readonly Verdict[]) => Verdict[];
const readableAll = (verdicts: readonly Verdict[]): boolean => verdicts.every((v) => v === "allowed");
interface Counts {
  removedFields: number;
  removedRecords: number;
}

/**
 * One ability's rules, looked up once per path for the whole answer (a path's rules do not depend on
 * the record) and each rule's conditions evaluated once per record: the same answer as CASL's
 * relevantRuleFor, without its per-call filtering, so a list of many records costs little more
 * than its fields.
 */
function ruleFinder(ability: PolicyAbility, subject: string): (path: string | undefined, matches: (rule: Rule) => boolean) => Rule | null {
  const byPath = new Map<string, readonly Rule[]>();
  return (path, matches) => {
    const key = path ?? "";
    let rules = byPath.get(key);
    if (rules === undefined) {
      rules = ability.rulesFor("read", subject, path);
      byPath.set(key, rules);
    }
    for (const rule of rules) if (matches(rule)) return rule;
    return null;
  };
}

/**
 * Response field masking (an endpoint's `response: { fields: masked }`): what remains of a JSON answer
 * once every field the caller may not read is removed, decided record by record as the gateway
 * decides a request — the caller's ability and, for an API key, its scopes' ability, with the
 * record's own values for conditions. A path is readable when the rule CASL finds for it allows
 * (`shippingAddress`, or a rule without fields), not when it denies (`payment.iban` in an inverted
 * rule, which denies all under it too); a nested path no rule names is as readable as its parent.
 * Lists are walked element by element, whatever they hold. A record the caller may not read at all
 * is removed from a list, and a single one becomes `{}`.
 */
export function maskRecords(own: PolicyAbility, scope: PolicyAbility | null, principal: PrincipalAttributes, target: MaskTarget, body: unknown): MaskOutcome {
  const counts: Counts = { removedFields: 0, removedRecords: 0 };
  const finders = (scope === null ? [own] : [own, scope]).map((ability) => ruleFinder(ability, target.subject));
  const maskOne = (record: Plain): Plain | null => {
    const { [CASL_TYPE_KEY]: _marker, ...fields } = record;
    const object = asSubject(target.subject, { ...fields, [PRINCIPAL]: principal });
    const matched = new Map<Rule, boolean>();
    const matches = (rule: Rule): boolean => {
      let result = matched.get(rule);
      if (result === undefined) {
        result = rule.matchesConditions(object);
        matched.set(rule, result);
      }
      return result;
    };
    const readable: Readable = (path, inherited) =>
      finders.map((find, i) => {
        const rule = find(path, matches);
        if (rule === null) return inherited[i] ?? "unset";
        return rule.inverted ? "denied" : "allowed";
      });
    const deniedWhole = finders.some((find) => {
      const rule = find(undefined, matches);
      return rule === null || rule.inverted;
    });
    if (deniedWhole) return null;
    return maskObject(record, "", 0, finders.map((): Verdict => "unset"), readable, counts) ?? {};
  };
  const maskList = (records: unknown): unknown[] | Plain | null => {
    if (isPlain(records)) {
      const masked = maskOne(records);
      if (masked === null) counts.removedRecords += 1;
      return masked ?? {};
    }
    if (!Array.isArray(records) || !records.every(isPlain)) return null;
    const kept: Plain[] = [];
    for (const record of records) {
      const masked = maskOne(record);
      if (masked === null) counts.removedRecords += 1;
      else kept.push(masked);
    }
    return kept;
  };
  if (target.at === undefined) {
    const masked = maskList(body);
    return masked === null ? { ok: false, reason: "NOT_RECORDS" } : { ok: true, body: masked, ...counts };
  }
  if (!isPlain(body) || !Object.hasOwn(body, target.at)) return { ok: false, reason: "NOT_RECORDS" };
  const masked = maskList(body[target.at]);
  if (masked === null) return { ok: false, reason: "NOT_RECORDS" };
  // The envelope's other properties (a cursor, a total) are the endpoint's, not a record's.
  return { ok: true, body: Object.fromEntries(Object.entries(body).map(([k, v]) => [k, k === target.at ? masked : v])), ...counts };
}

/**
 * An object's readable part: undefined when nothing of it is readable (and it was not readable
 * itself), so its key goes. `inherited`: whether the object's own path was readable, per ability.
 */
function maskObject(value: Plain, prefix: string, depth: number, inherited: readonly Verdict[], readable: Readable, counts: Counts): Plain | undefined {
  const kept: Array<[string, unknown]> = [];
  for (const [key, field] of Object.entries(value)) {
    // An empty key is no field a policy can name (CASL reads "" as "no field at all"), and would
    // give its children paths without their parent's.
    if (key === "" || depth + 1 >= MAX_DEPTH) {
      counts.removedFields += 1;
      continue;
    }
    const path = prefix === "" ? key : `${prefix}.${key}`;
    const part = maskValue(field, path, depth + 1, readable(path, inherited), readable, counts);
    if (part !== undefined) kept.push([key, part]);
  }
  if (kept.length === 0 && !readableAll(inherited)) return undefined;
  // fromEntries defines properties: a "__proto__" key stays data, never a prototype.
  return Object.fromEntries(kept);
}

/** What is left of one value at `path`; undefined when nothing. Each value removed whole counts once. */
function maskValue(field: unknown, path: string, depth: number, here: readonly Verdict[], readable: Readable, counts: Counts): unknown {
  const removed = (): undefined => {
    counts.removedFields += 1;
    return undefined;
  };
  // A denied field goes whole: a rule without fields (which CASL applies to every path) does not
  // bring back `internal.margin` once `internal` is denied.
  if (here.includes("denied")) return removed();
  const whole = readableAll(here);
  // Objects are looked into even when readable: a deny rule may name one of their fields.
  if (isPlain(field)) {
    const part = maskObject(field, path, depth, here, readable, counts);
    return part === undefined && Object.keys(field).length === 0 ? removed() : part;
  }
  // A list's elements are named by the list's path (`items.price`), nested lists included; each is
  // masked as a value of its own, so no kind of element escapes a deny rule.
  if (Array.isArray(field)) {
    if (depth >= MAX_DEPTH) return removed();
    const parts = field.map((element) => maskValue(element, path, depth + 1, here, readable, counts)).filter((part) => part !== undefined);
    if (parts.length === 0 && !whole) return field.length === 0 ? removed() : undefined;
    return parts;
  }
  return whole ? field : removed();
}
