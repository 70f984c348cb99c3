import { nearMiss, type SubjectSpec } from "./schema.ts";
import { isPlaceholder, ORDERING_OPERATORS, STRING_ORDERING_REFUSED } from "./conditions.ts";
import type { RawPolicyRule } from "./policySet.ts";
import type { EndpointSpec } from "./schema.ts";

/** The subjects a version declares (subjects.yaml); null when it declares none (nothing is checked). */
export type Subjects = ReadonlyMap<string, SubjectSpec> | null;

const list = (value: string | readonly string[]): readonly string[] => (typeof value === "string" ? [value] : value);
const suggestion = (word: string, candidates: readonly string[]): string => {
  const near = nearMiss(word, candidates);
  return near === undefined ? ` (declared: ${candidates.join(", ")})` : `; did you mean ${near}?`;
};

/** Problems of a subject and action pair against the declared subjects, as [path, reason]. */
export function subjectProblems(subjects: Subjects, subject: string, action: string, path: { subject: string; action: string }): Array<[string, string]> {
  if (subjects === null || subject === "all") return [];
  const spec = subjects.get(subject);
  if (spec === undefined) return [[path.subject, `unknown subject ${subject}${suggestion(subject, [...subjects.keys()])}`]];
  if (action === "manage" || spec.actions.includes(action)) return [];
  return [[path.action, `${subject} has no action ${action}${suggestion(action, spec.actions)}`]];
}

/** A rule's subjects, actions, fields and conditions against the declared subjects. */
export function ruleSubjectProblems(subjects: Subjects, rule: RawPolicyRule, path: string): Array<[string, string]> {
  if (subjects === null) return [];
  const problems: Array<[string, string]> = [];
  const names = list(rule.subject);
  names.forEach((subject, i) => {
    const at = typeof rule.subject === "string" ? `${path}/subject` : `${path}/subject/${i}`;
    list(rule.action).forEach((action, j) => problems.push(...subjectProblems(subjects, subject, action, { subject: at, action: typeof rule.action === "string" ? `${path}/action` : `${path}/action/${j}` })));
  });
  const declared = names.filter((n) => n !== "all").map((n) => subjects.get(n)).filter((s): s is SubjectSpec => s !== undefined);
  const attributeProblem = (attribute: string, at: string, what: string): void => {
    const top = attribute.split(".")[0] ?? attribute;
    for (const spec of declared) {
      if (!Object.hasOwn(spec.attributes, top)) problems.push([at, `${what} on ${spec.name}.${top}, which ${spec.name} does not declare${suggestion(top, Object.keys(spec.attributes))}`]);
    }
  };
  (rule.fields ?? []).forEach((field, i) => attributeProblem(field, `${path}/fields/${i}`, "a field rule"));
  for (const [attribute, condition] of Object.entries(rule.conditions ?? {})) {
    const at = `${path}/conditions/${attribute}`;
    attributeProblem(attribute, at, "a condition");
    const top = attribute.split(".")[0] ?? attribute;
    if (top !== attribute) continue;
    for (const spec of declared) {
      const type = spec.attributes[top];
      if (type === undefined) continue;
      for (const value of literals(condition)) {
        if (!fits(value, type)) problems.push([at, `${spec.name}.${top} is a ${type}; ${JSON.stringify(value)} can never be equal to one`]);
      }
      const ordered = typeof condition === "object" && condition !== null && Object.keys(condition).some((op) => ORDERING_OPERATORS.has(op));
      if (ordered && type !== "number") problems.push([at, `${spec.name}.${top} is a ${type}; ${STRING_ORDERING_REFUSED}`]);
    }
  }
  return problems;
}

/** The literal values a condition compares with (placeholders and $exists excluded). */
function literals(condition: unknown): unknown[] {
  if (typeof condition !== "object" || condition === null) return isPlaceholder(condition) ? [] : [condition];
  return Object.entries(condition).flatMap(([op, operand]) => (op === "$exists" ? [] : (Array.isArray(operand) ? operand : [operand]).filter((v) => !isPlaceholder(v))));
}

function fits(value: unknown, type: string): boolean {
  if (value === null) return true;
  if (type === "list") return typeof value === "string";
  return typeof value === type;
}

/** An endpoint's subject and action against the declared subjects. */
export function endpointSubjectProblems(subjects: Subjects, spec: EndpointSpec, path: string): Array<[string, string]> {
  return subjectProblems(subjects, spec.subject, spec.action, { subject: `${path}/subject`, action: `${path}/action` });
}

const covers = (outer: readonly string[], inner: readonly string[], wildcard: string): boolean => outer.includes(wildcard) || inner.every((x) => outer.includes(x));

/**
 * Rules that can never have an effect, as warnings: an allow rule that a deny rule of the same role
 * without conditions or fields covers (deny rules always take precedence), and a rule whose action on
 * its subject no endpoint asks for (it reaches upstreams only through the packed rules).
 */
export function ruleWarnings(rules: readonly RawPolicyRule[], endpoints: readonly EndpointSpec[]): Array<{ rule: RawPolicyRule; reason: string }> {
  const warnings: Array<{ rule: RawPolicyRule; reason: string }> = [];
  const asked = new Set(endpoints.map((e) => `${e.action} ${e.subject}`));
  for (const rule of rules) {
    if (rule.inverted !== true) {
      const shadow = rules.find((d) => d.inverted === true && d.role === rule.role && d.conditions === undefined && d.fields === undefined && covers(list(d.action), list(rule.action), "manage") && covers(list(d.subject), list(rule.subject), "all"));
      if (shadow !== undefined) warnings.push({ rule, reason: `never allows anything: the deny rule ${shadow.id} (no conditions, no fields) covers it` });
    }
    const pairs = list(rule.action).flatMap((a) => list(rule.subject).map((s) => [a, s] as const)).filter(([a, s]) => a !== "manage" && s !== "all");
    const unasked = pairs.filter(([a, s]) => !asked.has(`${a} ${s}`));
    if (pairs.length > 0 && unasked.length === pairs.length) warnings.push({ rule, reason: `no endpoint asks for ${unasked.map(([a, s]) => `${a} ${s}`).join(", ")}: the rule reaches upstreams only through the packed rules` });
  }
  return warnings;
}
