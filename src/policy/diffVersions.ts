import { AbilityCache } from "./abilityCache.ts";
import type { PolicyAbility } from "./compileAbility.ts";
import { ruleIdOf } from "./compileAbility.ts";
import type { PolicySet, RawPolicyRule } from "./policySet.ts";

/** What a role may do on one endpoint and method, judged from its compiled rules alone (no resource). */
export type Verdict = "allow" | "deny" | "conditional" | "unmapped";

export interface CellState {
  verdict: Verdict;
  /** What the endpoint means in this version (null: not mapped): a change of any of these changes who gets what. */
  meaning: { action: string; subject: string; path: string; resource: string; fields: string | null; response?: string } | null;
  /** The rules that apply, in precedence order. */
  rules: string[];
}

export interface CellChange {
  role: string;
  endpoint: string;
  method: string;
  change: "allow→deny" | "deny→allow" | "conditions changed" | "mapping changed";
  from: CellState;
  to: CellState;
}

export interface RuleChange {
  /** A role, or `scope:<id>` for an API key scope. */
  role: string;
  id: string;
  change: "added" | "removed" | "changed";
  /** What the rule says in each version (null where it does not exist). */
  from: RawPolicyRule | null;
  to: RawPolicyRule | null;
}

export interface PermissionDiff {
  from: string;
  to: string;
  /** Every role × endpoint × method cell whose outcome, conditions or meaning changed. */
  cells: CellChange[];
  /** Every rule added, removed or changed, by id, with its role, actions, subjects, fields and conditions. */
  rules: RuleChange[];
  /** How many cells were compared (all of them: the diff is exhaustive, not sampled). */
  compared: number;
}

/**
 * The permission difference between two versions, derived from their compiled abilities: each role's
 * outcome on each endpoint and method of either version, and each rule that changed. A cell is
 * `allow` or `deny` when its rules decide without looking at the resource or the fields, `conditional`
 * otherwise; a change between two conditional cells is reported when their rules differ.
 */
export function diffVersions(from: PolicySet, to: PolicySet): PermissionDiff {
  const caches = [new AbilityCache(from), new AbilityCache(to)] as const;
  const roles = [...new Set([...from.rulesByRole.keys(), ...to.rulesByRole.keys()])].sort();
  const endpoints = endpointMethods(from, to);
  const cells: CellChange[] = [];
  let compared = 0;
  for (const role of roles) {
    for (const { id, method } of endpoints) {
      compared += 1;
      const [a, b] = caches.map((cache) => cellState(cache, [role], id, method)) as [CellState, CellState];
      const change = classify(a, b, ruleSignature(caches[0], [role], a), ruleSignature(caches[1], [role], b));
      if (change !== null) cells.push({ role, endpoint: id, method, change, from: a, to: b });
    }
  }
  return { from: from.version, to: to.version, cells, rules: ruleChanges(from, to), compared };
}

/** Every (endpoint id, method) of either version; `*` stands for every method, as the matcher reads it. */
function endpointMethods(...versions: PolicySet[]): Array<{ id: string; method: string }> {
  const seen = new Map<string, { id: string; method: string }>();
  for (const policy of versions) {
    for (const id of policy.matcher.endpointIds()) {
      for (const method of policy.matcher.spec(id)?.methods ?? []) seen.set(`${id} ${method}`, { id, method });
    }
  }
  return [...seen.values()].sort((x, y) => x.id.localeCompare(y.id) || x.method.localeCompare(y.method));
}

function cellState(cache: AbilityCache, roles: string[], endpointId: string, method: string): CellState {
  const spec = cache.policy.matcher.spec(endpointId);
  if (spec === undefined || !(spec.methods as readonly string[]).includes(method)) return { verdict: "unmapped", meaning: null, rules: [] };
  const ability = cache.get(roles).ability;
  const applicable = ability.possibleRulesFor(spec.action, spec.subject);
  const meaning = { action: spec.action, subject: spec.subject, path: spec.path, resource: `${spec.resource?.from ?? "none"}${spec.resource?.id === undefined ? "" : `:${spec.resource.id}`}`, fields: spec.fields ?? null,
    // Masking changes what a caller sees of an answer: a cell whose masking changes has changed.
    ...(spec.response === undefined ? {} : { response: `masked${spec.response.at === undefined ? "" : ` at ${spec.response.at}`}, maxBytes ${spec.response.maxBytes ?? "default"}` }) };
  return { verdict: verdictOf(applicable), meaning, rules: applicable.map((r) => ruleIdOf(r.origin) ?? "") };
}

function verdictOf(rules: ReturnType<PolicyAbility["possibleRulesFor"]>): Verdict {
  if (!rules.some((r) => !r.inverted)) return "deny";
  const first = rules[0];
  // The first rule decides for every resource only when it looks at neither attributes nor fields.
  if (first !== undefined && first.conditions === undefined && first.fields === undefined) return first.inverted ? "deny" : "allow";
  return "conditional";
}

/** The rules of a cell as written (what changed in "conditions changed" is visible in the rule list). */
function ruleSignature(cache: AbilityCache, roles: string[], state: CellState): string {
  const raw = new Map(cache.get(roles).rules.map((r) => [r.id, r]));
  return JSON.stringify(state.rules.map((id) => comparable(raw.get(id))));
}

function classify(a: CellState, b: CellState, signatureA: string, signatureB: string): CellChange["change"] | null {
  const meaning = (s: CellState): string => JSON.stringify(s.meaning);
  if (a.verdict === "unmapped" || b.verdict === "unmapped" || meaning(a) !== meaning(b)) {
    if (a.verdict === b.verdict && meaning(a) === meaning(b)) return null;
    return "mapping changed";
  }
  if (a.verdict === "deny" && b.verdict !== "deny") return "deny→allow";
  if (a.verdict !== "deny" && b.verdict === "deny") return "allow→deny";
  // Between allow and conditional some requests flip and others do not: the rules say which.
  return signatureA === signatureB && a.verdict === b.verdict ? null : "conditions changed";
}

/** A rule without its id and role, for comparing what two versions say under one id. */
function comparable(rule: RawPolicyRule | undefined): unknown {
  if (rule === undefined) return null;
  const { action, subject, fields, conditions, inverted } = rule;
  return { action, subject, fields: fields ?? null, conditions: conditions ?? null, inverted: inverted === true };
}

function allRules(policy: PolicySet): Map<string, RawPolicyRule> {
  const rules = new Map<string, RawPolicyRule>();
  for (const list of policy.rulesByRole.values()) for (const r of list) rules.set(r.id, r);
  for (const scope of policy.scopes.values()) for (const r of scope.rules) rules.set(r.id, r);
  return rules;
}

function ruleChanges(from: PolicySet, to: PolicySet): RuleChange[] {
  const [a, b] = [allRules(from), allRules(to)];
  const ids = [...new Set([...a.keys(), ...b.keys()])].sort();
  return ids.flatMap((id): RuleChange[] => {
    const [x, y] = [a.get(id) ?? null, b.get(id) ?? null];
    if (x === null && y !== null) return [{ role: y.role, id, change: "added", from: null, to: y }];
    if (y === null && x !== null) return [{ role: x.role, id, change: "removed", from: x, to: null }];
    if (x !== null && y !== null && (x.role !== y.role || JSON.stringify(comparable(x)) !== JSON.stringify(comparable(y)))) return [{ role: y.role, id, change: "changed", from: x, to: y }];
    return [];
  });
}

const describeRule = (r: RawPolicyRule): string =>
  `${r.inverted === true ? "deny" : "allow"} ${[r.action].flat().join("|")} ${[r.subject].flat().join("|")}${r.fields === undefined ? "" : ` fields ${r.fields.join(",")}`}${r.conditions === undefined ? "" : ` when ${JSON.stringify(r.conditions)}`}`;

/** The diff as the CLI prints it. */
export function formatDiff(diff: PermissionDiff): string {
  const lines = [`permission diff ${diff.from} -> ${diff.to}: ${diff.cells.length} of ${diff.compared} role × endpoint × method cells changed`];
  const width = Math.max(0, ...diff.cells.map((c) => c.role.length));
  for (const c of diff.cells) {
    const rules = (s: CellState): string => (s.verdict === "unmapped" ? "not mapped" : `${s.verdict} [${s.rules.join(", ") || "no rule"}]`);
    lines.push(`  ${c.change.padEnd(18)} ${c.role.padEnd(width)}  ${c.method.padEnd(6)} ${c.endpoint}: ${rules(c.from)} -> ${rules(c.to)}`);
  }
  lines.push(`rules: ${diff.rules.length} added, removed or changed`);
  for (const r of diff.rules) {
    const what = r.change === "changed" && r.from !== null && r.to !== null ? `${describeRule(r.from)} -> ${describeRule(r.to)}` : describeRule((r.to ?? r.from) as RawPolicyRule);
    lines.push(`  ${r.change.padEnd(8)} ${r.id} [${r.role}] ${what}`);
  }
  return `${lines.join("\n")}\n`;
}
