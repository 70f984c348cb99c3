import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { LineCounter, parse as parseYaml, parseDocument, type Document } from "yaml";
import Value from "#typebox/value";
import type { TSchema } from "#typebox";
import {
  EndpointFileSchema, EndpointSchema, ManifestSchema, nearMiss, PolicyTestCaseSchema, PolicyTestSchema, RequestTestCaseSchema, RoleFileSchema, RuleSchema, schemaProblems,
  ScopeFileSchema, ScopeSchema, SubjectFileSchema, TestPrincipalSchema, type SubjectSpec,
  type EndpointSpec, type Manifest, type PolicyTestCase, type RequestTestCase, type RuleSpec, type ScopeSpec, type TestPrincipal,
} from "./schema.ts";
import { compileEndpoint, EndpointMatcher, patternProblems, type CompiledEndpoint } from "./endpointMatcher.ts";
import { hasPlaceholder, validateConditions } from "./conditions.ts";
import { endpointSubjectProblems, ruleSubjectProblems, ruleWarnings, subjectProblems, type Subjects } from "./subjectSchema.ts";
import { PolicyError, type PolicyProblem, type PolicySet, type RawPolicyRule, type RequestTest } from "./policySet.ts";

export interface LoadPolicyOptions {
  caseInsensitivePaths?: boolean;
  /** Users a request case may name by email in `expect` (the demo's accounts), as their sessions carry them. */
  knownUsers?: ReadonlyMap<string, TestPrincipal>;
}

/** Lists version folders (those holding a manifest.yaml), newest `created` first. */
export function listPolicyVersions(root: string): Array<{ version: string; created: string; dir: string }> {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    throw new PolicyError([{ file: root, path: "", reason: "policy folder not found" }]);
  }
  const versions = [];
  for (const name of names) {
    const dir = join(root, name);
    const manifestFile = join(dir, "manifest.yaml");
    if (isDraftFolder(name) || !statSync(dir).isDirectory()) continue;
    try {
      // Only regular files are read: a FIFO would block forever. The reload reports the folder as unreadable.
      if (!statSync(manifestFile).isFile()) continue;
      const manifest = parseYaml(readFileSync(manifestFile, "utf8")) as Partial<Manifest> | null;
      versions.push({ version: name, created: String(manifest?.created ?? ""), dir });
    } catch {
      // An unreadable manifest: not listed.
    }
  }
  return versions.sort((a, b) => b.created.localeCompare(a.created));
}

/** Schema problems shown per file; one line says there are more. */
const PROBLEMS_PER_FILE = 20;

/** A parsed file: its data (defaults filled in) whether or not it fits its schema, and whether it does. */
interface ReadFile {
  data: unknown;
  valid: boolean;
}

/**
 * Loads and validates one version folder; throws PolicyError listing every problem found. A file that
 * does not fit its schema is still checked entry by entry, so one mistake does not hide the others.
 */
export function loadPolicySet(dir: string, options: LoadPolicyOptions = {}): PolicySet {
  const problems: PolicyProblem[] = [];
  const root = join(dir, "..");
  const rel = (file: string): string => relative(root, file) || file;
  // Each parsed file's document, so every problem can say its line.
  const documents = new Map<string, { doc: Document; lineCounter: LineCounter }>();

  const read = (file: string, schema: TSchema): ReadFile | null => {
    let data: unknown;
    try {
      if (!statSync(file).isFile()) {
        problems.push({ file: rel(file), path: "", reason: "not a regular file" });
        return null;
      }
      const lineCounter = new LineCounter();
      const doc = parseDocument(readFileSync(file, "utf8"), { uniqueKeys: true, lineCounter });
      if (doc.errors[0] !== undefined) throw doc.errors[0];
      documents.set(rel(file), { doc, lineCounter });
      data = doc.toJS();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const line = (error as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line;
      // Only a parse error is about YAML; a folder or file that cannot be read says so.
      const reason = code === "ENOENT" ? "file not found" : typeof code === "string" && !code.startsWith("YAML") && code !== "DUPLICATE_KEY" && line === undefined ? `cannot be read (${code})` : `not valid YAML: ${(error as Error).message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "")}`;
      problems.push({ file: rel(file), ...(line === undefined ? {} : { line }), path: "", reason });
      return null;
    }
    const found = schemaProblems(schema, data);
    data = Value.Default(schema, data);
    for (const p of found.slice(0, PROBLEMS_PER_FILE)) problems.push({ file: rel(file), ...p });
    if (found.length > PROBLEMS_PER_FILE) problems.push({ file: rel(file), path: "", reason: "more problems in this file are not shown; fix these first" });
    return { data, valid: found.length === 0 };
  };
  const yamlFiles = (sub: string): string[] => {
    let names: string[];
    try {
      names = readdirSync(join(dir, sub));
    } catch {
      return [];
    }
    // A rule file the loader skipped would silently grant or deny differently: refuse look-alikes.
    for (const f of names.filter((n) => /\.(yml|json)$/i.test(n) || (/\.yaml$/i.test(n) && !n.endsWith(".yaml")))) {
      problems.push({ file: rel(join(dir, sub, f)), path: "", reason: "policy files must end in .yaml" });
    }
    return names.filter((f) => f.endsWith(".yaml")).sort().map((f) => join(dir, sub, f));
  };

  const manifestFile = read(join(dir, "manifest.yaml"), ManifestSchema);
  const manifest = manifestFile?.valid === true ? (manifestFile.data as Manifest) : null;
  const folder = dir.split(/[\\/]/).filter(Boolean).at(-1) ?? dir;
  // A draft lives in _<version> until `gerbang policy publish` renames it into place.
  const expected = isDraftFolder(folder) ? folder.slice(1) : folder;
  const version = field(manifestFile, "version");
  if (Value.Check(ManifestSchema.properties.version, version) && version !== expected) {
    problems.push({ file: rel(join(dir, "manifest.yaml")), path: "/version", reason: `must equal the folder name ${expected}${expected === folder ? "" : ` (the draft ${folder})`}` });
  }
  // Unknown when the manifest's list is broken: placeholders are then not judged against it.
  const attributes = field(manifestFile, "principalAttributes");
  const principalAttributes = Value.Check(ManifestSchema.properties.principalAttributes, attributes) ? attributes : null;
  const conditionProblems = (conditions: Record<string, unknown>, path: string): Array<[string, string]> =>
    validateConditions(conditions, principalAttributes ?? [], path).filter(([, reason]) => principalAttributes !== null || !reason.startsWith("unknown principal attribute"));

  const subjects = readSubjectsWith(read, join(dir, "subjects.yaml"), problems, rel);
  // Where each rule is written, for the warnings about it.
  const ruleAt = new Map<string, { file: string; path: string }>();
  const rulesByRole = new Map<string, RawPolicyRule[]>();
  const ruleIds = new Set<string>();
  let everyRoleRead = true;
  for (const file of yamlFiles("roles")) {
    const roleFile = read(file, RoleFileSchema);
    everyRoleRead &&= roleFile?.valid === true;
    const role = field(roleFile, "role");
    const named = Value.Check(RoleFileSchema.properties.role, role);
    if (named && rulesByRole.has(role)) problems.push({ file: rel(file), path: "/role", reason: `role ${role} is defined twice` });
    const rules: RawPolicyRule[] = [];
    for (const [i, rule] of entries<RuleSpec>(field(roleFile, "rules"), RuleSchema)) {
      const path = `/rules/${i}`;
      if (ruleIds.has(rule.id)) problems.push({ file: rel(file), path: `${path}/id`, reason: `duplicate rule id ${rule.id}` });
      ruleIds.add(rule.id);
      if (rule.conditions !== undefined) {
        for (const [p, reason] of conditionProblems(rule.conditions, `${path}/conditions`)) problems.push({ file: rel(file), path: p, reason });
        // A deny rule whose placeholder cannot be resolved would silently stop denying.
        if (rule.inverted === true && hasPlaceholder(rule.conditions)) {
          problems.push({ file: rel(file), path: `${path}/conditions`, reason: "inverted rules may not use principal placeholders" });
        }
      }
      const raw = { ...rule, role: String(role) };
      for (const [p, reason] of ruleSubjectProblems(subjects, raw, path)) problems.push({ file: rel(file), path: p, reason });
      ruleAt.set(rule.id, { file: rel(file), path });
      rules.push(raw);
    }
    if (named) rulesByRole.set(role, rules);
  }
  if (!rulesByRole.has("anonymous")) rulesByRole.set("anonymous", []);

  const scopes = new Map<string, { description?: string; rules: RawPolicyRule[] }>();
  const scopePath = join(dir, "scopes.yaml");
  const scopeFile = existsSync(scopePath) ? read(scopePath, ScopeFileSchema) : { data: null, valid: true };
  for (const [i, scope] of entries<ScopeSpec>(field(scopeFile, "scopes"), ScopeSchema)) {
    const path = `/scopes/${i}`;
    if (scopes.has(scope.id)) problems.push({ file: rel(scopePath), path: `${path}/id`, reason: `scope ${scope.id} is defined twice` });
    const rules = scope.rules.map((rule, j) => {
      if (ruleIds.has(rule.id)) problems.push({ file: rel(scopePath), path: `${path}/rules/${j}/id`, reason: `duplicate rule id ${rule.id}` });
      ruleIds.add(rule.id);
      if (rule.conditions !== undefined) {
        for (const [p, reason] of conditionProblems(rule.conditions, `${path}/rules/${j}/conditions`)) problems.push({ file: rel(scopePath), path: p, reason });
      }
      // A scope only narrows: a deny inside it would read as a grant elsewhere, so scopes hold allow rules only.
      if (rule.inverted === true) problems.push({ file: rel(scopePath), path: `${path}/rules/${j}/inverted`, reason: "scopes hold allow rules only" });
      const raw = { ...rule, role: `scope:${scope.id}` };
      for (const [p, reason] of ruleSubjectProblems(subjects, raw, `${path}/rules/${j}`)) problems.push({ file: rel(scopePath), path: p, reason });
      ruleAt.set(rule.id, { file: rel(scopePath), path: `${path}/rules/${j}` });
      return raw;
    });
    scopes.set(scope.id, { ...(scope.description === undefined ? {} : { description: scope.description }), rules });
  }

  const compiled: CompiledEndpoint[] = [];
  const endpointIds = new Set<string>();
  let everyEndpointRead = true;
  for (const file of yamlFiles("endpoints")) {
    const endpointFile = read(file, EndpointFileSchema);
    everyEndpointRead &&= endpointFile?.valid === true;
    for (const [i, spec] of entries<EndpointSpec>(field(endpointFile, "endpoints"), EndpointSchema)) {
      const path = `/endpoints/${i}`;
      const add = (p: string, reason: string): void => void problems.push({ file: rel(file), path: `${path}${p}`, reason });
      if (endpointIds.has(spec.id)) add("/id", `duplicate endpoint id ${spec.id}`);
      endpointIds.add(spec.id);
      for (const reason of patternProblems(spec.path)) add("/path", reason);
      for (const [p, reason] of endpointSubjectProblems(subjects, spec, "")) add(p, reason);
      const endpoint = compileEndpoint(spec, options.caseInsensitivePaths === true);
      if (spec.resource?.from === "resolver" && spec.resource.id === undefined) add("/resource/id", "a resolver needs the path parameter holding the id");
      if (spec.resource?.from === "filter" && spec.fields !== undefined) add("/fields", "a listing (resource from filter) has no body fields to check");
      if (spec.resource?.id !== undefined && !endpoint.paramNames.includes(spec.resource.id)) {
        add("/resource/id", `:${spec.resource.id} is not a parameter of ${spec.path}`);
      }
      const clash = compiled.find((other) => sameShape(other, endpoint) && [...endpoint.methods].some((m) => other.methods.has(m) || m === "*" || other.methods.has("*")));
      if (clash !== undefined) add("/path", `overlaps endpoint ${clash.spec.id} for the same methods`);
      compiled.push(endpoint);
    }
  }
  // Said only when it is so: endpoints in a file with a mistake elsewhere in it still count as defined.
  if (compiled.length === 0 && everyEndpointRead) problems.push({ file: rel(join(dir, "endpoints")), path: "", reason: "no endpoints defined" });

  const tests: Array<PolicySet["tests"][number]> = [];
  const requestTests: RequestTest[] = [];
  for (const file of yamlFiles("tests")) {
    const testFile = read(file, PolicyTestSchema);
    // A scope name is judged only against a scopes.yaml that was read whole.
    const checkScopes = (principal: TestPrincipal, path: string, what: string): void =>
      (principal.scopes ?? []).forEach((scope, j) => {
        if (scopeFile?.valid !== true || scopes.has(scope)) return;
        const near = nearMiss(scope, [...scopes.keys()]);
        problems.push({ file: rel(file), path: `${path}/scopes/${j}`, reason: `${what} names unknown scope ${scope}${near === undefined ? "" : `; did you mean ${near}?`}` });
      });
    // A role name is judged only when every role file was read (a broken admin.yaml is not also "unknown role admin").
    const checkRoles = (principal: TestPrincipal, path: string, what: string): void =>
      principal.roles.forEach((role, j) => {
        if (!everyRoleRead || rulesByRole.has(role)) return;
        const near = nearMiss(role, [...rulesByRole.keys()]);
        problems.push({ file: rel(file), path: `${path}/roles/${j}`, reason: `${what} names unknown role ${role}${near === undefined ? "" : `; did you mean ${near}?`}` });
      });
    for (const [i, test] of entries<PolicyTestCase>(field(testFile, "tests"), PolicyTestCaseSchema)) {
      checkScopes(test.principal, `/tests/${i}/principal`, `test "${test.name}"`);
      checkRoles(test.principal, `/tests/${i}/principal`, `test "${test.name}"`);
      for (const [p, reason] of subjectProblems(subjects, test.subject, test.action, { subject: `/tests/${i}/subject`, action: `/tests/${i}/action` })) problems.push({ file: rel(file), path: p, reason });
      tests.push({ ...test, file: rel(file) });
    }
    const principals = new Map<string, TestPrincipal>();
    const listed = field(testFile, "principals");
    if (typeof listed === "object" && listed !== null) {
      for (const [name, principal] of Object.entries(listed)) {
        if (!Value.Check(TestPrincipalSchema, principal)) continue;
        checkScopes(principal, `/principals/${name}`, `principal ${name}`);
        checkRoles(principal, `/principals/${name}`, `principal ${name}`);
        principals.set(name, principal);
      }
    }
    for (const [i, test] of entries<RequestTestCase>(field(testFile, "requests"), RequestTestCaseSchema)) {
      const cells: Array<RequestTest["cells"][number]> = [];
      for (const [name, expected] of Object.entries(test.expect)) {
        // A role's name alone asks as that role with no attributes.
        const as = principals.get(name) ?? options.knownUsers?.get(name) ?? (rulesByRole.has(name) ? { roles: [name] } : undefined);
        if (as === undefined) {
          // Judged only when every role file was read: a broken admin.yaml must not also be "unknown principal admin".
          if (!everyRoleRead) continue;
          const near = nearMiss(name, [...principals.keys(), ...rulesByRole.keys(), ...(options.knownUsers?.keys() ?? [])]);
          problems.push({ file: rel(file), path: `/requests/${i}/expect/${name}`, reason: `unknown principal ${name}: name one under principals:, a role or a demo user${near === undefined ? "" : `; did you mean ${near}?`}` });
          continue;
        }
        cells.push({ principal: name, as, expect: typeof expected === "number" ? { status: expected } : expected });
      }
      requestTests.push({ file: rel(file), name: test.name, request: test.request, ...(test.resource === undefined ? {} : { resource: test.resource }), cells });
    }
  }

  if (problems.length > 0 || manifest === null) throw new PolicyError(problems.map((p) => withLine(p, documents.get(p.file))));
  const everyRule = [...rulesByRole.values(), ...[...scopes.values()].map((s) => s.rules)].flat();
  const warnings = ruleWarnings(everyRule, compiled.map((e) => e.spec)).map(({ rule, reason }): PolicyProblem => {
    const at = ruleAt.get(rule.id) ?? { file: rel(dir), path: "" };
    return withLine({ file: at.file, path: at.path, reason }, documents.get(at.file));
  });
  return { version: manifest.version, manifest, dir, rulesByRole, scopes, matcher: new EndpointMatcher(compiled), tests, requestTests, warnings };
}

/** subjects.yaml when the version has one (read through `read`, so its problems are reported like any file's). */
function readSubjectsWith(read: (file: string, schema: TSchema) => ReadFile | null, file: string, problems: PolicyProblem[], rel: (f: string) => string): Subjects {
  if (!existsSync(file)) return null;
  const subjects = new Map<string, SubjectSpec>();
  for (const [i, spec] of entries<SubjectSpec>(field(read(file, SubjectFileSchema), "subjects"), SubjectFileSchema.properties.subjects.items)) {
    if (subjects.has(spec.name)) problems.push({ file: rel(file), path: `/subjects/${i}/name`, reason: `subject ${spec.name} is declared twice` });
    subjects.set(spec.name, spec);
  }
  return subjects;
}

/** A draft folder: `_<version>`, never listed, loaded or activated as a version until published. */
export const isDraftFolder = (name: string): boolean => name.startsWith("_");

/** The problem with the line of the node its path points at (or of the nearest parent that exists). */
function withLine(problem: PolicyProblem, parsed: { doc: Document; lineCounter: LineCounter } | undefined): PolicyProblem {
  if (parsed === undefined) return problem;
  const segments = problem.path.split("/").slice(1).filter((s) => s !== "").map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  for (let n = segments.length; n >= 0; n--) {
    const node = n === 0 ? parsed.doc.contents : parsed.doc.getIn(segments.slice(0, n), true);
    const offset = (node as { range?: [number, number, number] } | null | undefined)?.range?.[0];
    if (offset !== undefined) return { ...problem, line: parsed.lineCounter.linePos(offset).line };
  }
  return problem;
}

/** A top-level key of a read file's data. */
function field(file: ReadFile | null, key: string): unknown {
  const data = file?.data;
  return typeof data === "object" && data !== null ? (data as Record<string, unknown>)[key] : undefined;
}

/** The entries of a list that fit `schema` on their own, with their index. */
function entries<T>(list: unknown, schema: TSchema): Array<[number, T]> {
  return Array.isArray(list) ? list.flatMap((entry: unknown, i) => (Value.Check(schema, entry) ? [[i, entry as T] as [number, T]] : [])) : [];
}

function sameShape(a: CompiledEndpoint, b: CompiledEndpoint): boolean {
  if (a.rest !== b.rest || a.segments.length !== b.segments.length) return false;
  return a.segments.every((s, i) => {
    const o = b.segments[i];
    return s.kind === "param" ? o?.kind === "param" : o?.kind === "literal" && s.value === o.value;
  });
}
