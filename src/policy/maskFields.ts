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

type Plain = Record<string, unknown>;
const isPlain = (value: unknown): value is Plain => typeof value === "object" && value !== null && !Array.isArray(value);
const isRecordList = (value: unknown): value is Plain[] => Array.isArray(value) && value.length > 0 && value.every(isPlain);

/**
 * Per ability, a path is allowed, denied (an inverted rule names it or a parent) or unset (no rule
 * names it: as its parent was, unreadable at the top).
 */
type Verdict = "allowed" | "denied" | "unset";
type Readable = (path: string, inherited: readonly Verdict[]) => Verdict[];
const readableAll = (verdicts: readonly Verdict[]): boolean => verdicts.every((v) => v === "allowed");

/**
 * Response field masking (an endpoint's `response: { fields: masked }`): what remains of a JSON answer
 * once every field the caller may not read is removed, decided record by record as the gateway
 * decides a request — the caller's ability and, for an API key, its scopes' ability, with the
 * record's own values for conditions. A path is readable when the rule CASL finds for it allows
 * (`shippingAddress`, or a rule without fields), not when it denies (`payment.iban` in an inverted
 * rule, which denies all under it too); a nested path no rule names is as readable as its parent. A record the caller may not read
 * at all is removed from a list, and a single one becomes `{}`.
 */
export function maskRecords(own: PolicyAbility, scope: PolicyAbility | null, principal: PrincipalAttributes, target: MaskTarget, body: unknown): MaskOutcome {
  const counts = { removedFields: 0, removedRecords: 0 };
  const abilities = scope === null ? [own] : [own, scope];
  const maskOne = (record: Plain): Plain | null => {
    const object = asSubject(target.subject, { ...record, [PRINCIPAL]: principal });
    const readable: Readable = (path, inherited) =>
      abilities.map((ability, i) => {
        const rule = ability.relevantRuleFor("read", object, path);
        if (rule === null) return inherited[i] ?? "unset";
        return rule.inverted ? "denied" : "allowed";
      });
    const deniedWhole = abilities.some((ability) => {
      const rule = ability.relevantRuleFor("read", object);
      return rule === null || rule.inverted;
    });
    if (deniedWhole) return null;
    return maskObject(record, "", 0, abilities.map((): Verdict => "unset"), readable, counts) ?? {};
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
function maskObject(value: Plain, prefix: string, depth: number, inherited: readonly Verdict[], readable: Readable, counts: { removedFields: number }): Plain | undefined {
  const kept: Array<[string, unknown]> = [];
  for (const [key, field] of Object.entries(value)) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    const here = readable(path, inherited);
    const deeper = depth + 1 < MAX_DEPTH;
    const part = deeper ? maskValue(field, path, depth + 1, here, readable, counts) : undefined;
    if (part !== undefined) kept.push([key, part]);
    // Counted where removed whole: a value that was looked into has had its own parts counted.
    else if (!deeper || here.includes("denied") || !((isPlain(field) && Object.keys(field).length > 0) || isRecordList(field))) counts.removedFields += 1;
  }
  if (kept.length === 0 && !readableAll(inherited)) return undefined;
  // fromEntries defines properties: a "__proto__" key stays data, never a prototype.
  return Object.fromEntries(kept);
}

function maskValue(field: unknown, path: string, depth: number, here: readonly Verdict[], readable: Readable, counts: { removedFields: number }): unknown {
  // A denied field goes whole: a rule without fields (which CASL applies to every path) does not
  // bring back `internal.margin` once `internal` is denied.
  if (here.includes("denied")) return undefined;
  const whole = readableAll(here);
  // Objects are looked into even when readable: a deny rule may name one of their fields.
  if (isPlain(field)) return maskObject(field, path, depth, here, readable, counts);
  // A list of objects: each element's fields are named by the list's path (`items.price`).
  if (isRecordList(field)) {
    const parts = field.map((element) => maskObject(element, path, depth, here, readable, counts));
    if (parts.every((part) => part === undefined)) return whole ? field.map(() => ({})) : undefined;
    return parts.map((part) => part ?? {});
  }
  return whole ? field : undefined;
}
