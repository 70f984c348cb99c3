import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parse as parseYaml } from "yaml";
import Value from "typebox/value";
import type { TSchema } from "typebox";
import { EndpointFileSchema, ManifestSchema, PolicyTestSchema, RoleFileSchema, ScopeFileSchema, type EndpointSpec, type Manifest, type ScopeFile } from "./schema.ts";
import { compileEndpoint, EndpointMatcher, patternProblems, type CompiledEndpoint } from "./endpointMatcher.ts";
import { hasPlaceholder, validateConditions } from "./conditions.ts";
import { PolicyError, type PolicyProblem, type PolicySet, type RawPolicyRule } from "./policySet.ts";

export interface LoadPolicyOptions {
  caseInsensitivePaths?: boolean;
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
    if (name.startsWith("_") || !statSync(dir).isDirectory()) continue;
    try {
      // Only regular files are read: a FIFO would block forever. The reload reports the folder as unreadable.
      if (!statSync(manifestFile).isFile()) continue;
      const manifest = parseYaml(readFileSync(manifestFile, "utf8")) as Partial<Manifest> | null;
      versions.push({ version: name, created: String(manifest?.created ?? ""), dir });
    } catch {
      continue;
    }
  }
  return versions.sort((a, b) => b.created.localeCompare(a.created));
}

/** Loads and validates one version folder; throws PolicyError listing every problem found. */
export function loadPolicySet(dir: string, options: LoadPolicyOptions = {}): PolicySet {
  const problems: PolicyProblem[] = [];
  const root = join(dir, "..");
  const rel = (file: string): string => relative(root, file) || file;

  const read = <T>(file: string, schema: TSchema): T | null => {
    let data: unknown;
    try {
      if (existsSync(file) && !statSync(file).isFile()) {
        problems.push({ file: rel(file), path: "", reason: "not a regular file" });
        return null;
      }
      data = parseYaml(readFileSync(file, "utf8"), { uniqueKeys: true });
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : `not valid YAML: ${(error as Error).message.split("\n")[0]}`;
      problems.push({ file: rel(file), path: "", reason });
      return null;
    }
    const errors = [...Value.Errors(schema, Value.Default(schema, data))].filter((e) => e.keyword !== "boolean");
    for (const e of errors.slice(0, 20)) problems.push({ file: rel(file), path: e.instancePath || "/", reason: e.message });
    return errors.length === 0 ? (Value.Default(schema, data) as T) : null;
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

  const manifest = read<Manifest>(join(dir, "manifest.yaml"), ManifestSchema);
  const folder = dir.split(/[\\/]/).filter(Boolean).at(-1) ?? dir;
  if (manifest !== null && manifest.version !== folder) {
    problems.push({ file: rel(join(dir, "manifest.yaml")), path: "/version", reason: `must equal the folder name ${folder}` });
  }
  const principalAttributes = manifest?.principalAttributes ?? [];

  const rulesByRole = new Map<string, RawPolicyRule[]>();
  const ruleIds = new Set<string>();
  for (const file of yamlFiles("roles")) {
    const roleFile = read<{ role: string; rules: Array<Omit<RawPolicyRule, "role">> }>(file, RoleFileSchema);
    if (roleFile === null) continue;
    if (rulesByRole.has(roleFile.role)) problems.push({ file: rel(file), path: "/role", reason: `role ${roleFile.role} is defined twice` });
    const rules: RawPolicyRule[] = [];
    roleFile.rules.forEach((rule, i) => {
      const path = `/rules/${i}`;
      if (ruleIds.has(rule.id)) problems.push({ file: rel(file), path: `${path}/id`, reason: `duplicate rule id ${rule.id}` });
      ruleIds.add(rule.id);
      if (rule.conditions !== undefined) {
        for (const [p, reason] of validateConditions(rule.conditions, principalAttributes, `${path}/conditions`)) problems.push({ file: rel(file), path: p, reason });
        // A deny rule whose placeholder cannot be resolved would silently stop denying.
        if (rule.inverted === true && hasPlaceholder(rule.conditions)) {
          problems.push({ file: rel(file), path: `${path}/conditions`, reason: "inverted rules may not use principal placeholders" });
        }
      }
      rules.push({ ...rule, role: roleFile.role });
    });
    rulesByRole.set(roleFile.role, rules);
  }
  if (!rulesByRole.has("anonymous")) rulesByRole.set("anonymous", []);

  const scopes = new Map<string, { description?: string; rules: RawPolicyRule[] }>();
  const scopeFile = join(dir, "scopes.yaml");
  const scopeSpecs = existsSync(scopeFile) ? (read<ScopeFile>(scopeFile, ScopeFileSchema)?.scopes ?? []) : [];
  scopeSpecs.forEach((scope, i) => {
    const path = `/scopes/${i}`;
    if (scopes.has(scope.id)) problems.push({ file: rel(scopeFile), path: `${path}/id`, reason: `scope ${scope.id} is defined twice` });
    const rules = scope.rules.map((rule, j) => {
      if (ruleIds.has(rule.id)) problems.push({ file: rel(scopeFile), path: `${path}/rules/${j}/id`, reason: `duplicate rule id ${rule.id}` });
      ruleIds.add(rule.id);
      if (rule.conditions !== undefined) {
        for (const [p, reason] of validateConditions(rule.conditions, principalAttributes, `${path}/rules/${j}/conditions`)) problems.push({ file: rel(scopeFile), path: p, reason });
      }
      // A scope only narrows: a deny inside it would read as a grant elsewhere, so scopes hold allow rules only.
      if (rule.inverted === true) problems.push({ file: rel(scopeFile), path: `${path}/rules/${j}/inverted`, reason: "scopes hold allow rules only" });
      return { ...rule, role: `scope:${scope.id}` };
    });
    scopes.set(scope.id, { ...(scope.description === undefined ? {} : { description: scope.description }), rules });
  });

  const compiled: CompiledEndpoint[] = [];
  const endpointIds = new Set<string>();
  for (const file of yamlFiles("endpoints")) {
    const endpointFile = read<{ endpoints: EndpointSpec[] }>(file, EndpointFileSchema);
    endpointFile?.endpoints.forEach((spec, i) => {
      const path = `/endpoints/${i}`;
      const add = (p: string, reason: string): void => void problems.push({ file: rel(file), path: `${path}${p}`, reason });
      if (endpointIds.has(spec.id)) add("/id", `duplicate endpoint id ${spec.id}`);
      endpointIds.add(spec.id);
      for (const reason of patternProblems(spec.path)) add("/path", reason);
      const endpoint = compileEndpoint(spec, options.caseInsensitivePaths === true);
      const from = spec.resource?.from ?? "none";
      if (from === "resolver" && spec.resource?.id === undefined) add("/resource/id", "a resolver needs the path parameter holding the id");
      if (spec.resource?.id !== undefined && !endpoint.paramNames.includes(spec.resource.id)) {
        add("/resource/id", `:${spec.resource.id} is not a parameter of ${spec.path}`);
      }
      const clash = compiled.find((other) => sameShape(other, endpoint) && [...endpoint.methods].some((m) => other.methods.has(m) || m === "*" || other.methods.has("*")));
      if (clash !== undefined) add("/path", `overlaps endpoint ${clash.spec.id} for the same methods`);
      compiled.push(endpoint);
    });
  }
  if (compiled.length === 0 && problems.length === 0) problems.push({ file: rel(join(dir, "endpoints")), path: "", reason: "no endpoints defined" });

  const tests = yamlFiles("tests").flatMap((file) => {
    const testFile = read<{ tests: PolicySet["tests"][number][] }>(file, PolicyTestSchema);
    return (testFile?.tests ?? []).map((t) => ({ ...t, file: rel(file) }));
  });

  if (problems.length > 0 || manifest === null) throw new PolicyError(problems);
  for (const test of tests) {
    for (const scope of test.principal.scopes ?? []) {
      if (!scopes.has(scope)) problems.push({ file: test.file, path: "", reason: `test "${test.name}" names unknown scope ${scope}` });
    }
  }
  if (problems.length > 0) throw new PolicyError(problems);
  return { version: manifest.version, manifest, dir, rulesByRole, scopes, matcher: new EndpointMatcher(compiled), tests };
}

function sameShape(a: CompiledEndpoint, b: CompiledEndpoint): boolean {
  if (a.rest !== b.rest || a.segments.length !== b.segments.length) return false;
  return a.segments.every((s, i) => {
    const o = b.segments[i];
    return o !== undefined && s.kind === o.kind && (s.kind === "param" || (o.kind === "literal" && s.value === o.value));
  });
}
