import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { isDraftFolder, loadPolicySet } from "../policy/loadPolicySet.ts";
import { formatProblem, PolicyError, type PolicyProblem } from "../policy/policySet.ts";
import { endpointCoverage, runPolicyTests, type Coverage, type PolicyTestResult } from "../policy/runPolicyTests.ts";
import { surveyPolicyFolder } from "../policy/policyFolder.ts";
import { newDraft, publishDraft } from "../policy/draftVersion.ts";
import { policyRoot, policyLoadOptions } from "../runtime/activePolicy.ts";
import type { CommonFlags } from "./main.ts";
import { operate, operatorConfig } from "./operate.ts";
import type { ActivationResult } from "../activation/activateVersion.ts";

/** A path as given, else a version name (or draft) under the configured policy.dir. */
function targetDir(target: string | undefined, root: string): string {
  if (target === undefined) return root;
  if (existsSync(target)) return resolve(target);
  const named = join(root, target);
  if (existsSync(named)) return named;
  throw new Error(`no policy version or folder ${target} (looked in ${resolve(target)} and ${named})`);
}

interface VersionReport {
  version: string;
  dir: string;
  draft: boolean;
  valid: boolean;
  problems: PolicyProblem[];
  warnings: readonly PolicyProblem[];
  tests: PolicyTestResult[];
  coverage: Coverage | null;
}

/**
 * Every version a target names: one version folder, or each folder of a folder of versions (drafts
 * included), plus the problems of the folder as a whole (unreadable manifests, ties in created).
 */
function checkTarget(target: string | undefined, flags: { config?: string }): { reports: VersionReport[]; problems: PolicyProblem[]; dir: string } {
  const config = operatorConfig(flags.config);
  const dir = targetDir(target, policyRoot(config.policy.dir));
  const single = existsSync(join(dir, "manifest.yaml"));
  const survey: { folders: Array<{ name: string; dir: string }>; problems: PolicyProblem[] } = single ? { folders: [{ name: basename(dir), dir }], problems: [] } : surveyPolicyFolder(dir);
  if (!single && survey.folders.length === 0 && survey.problems.length === 0) survey.problems.push({ file: dir, path: "", reason: "no policy versions here" });
  const reports = survey.folders.map(({ name, dir: versionDir }): VersionReport => {
    const base = { version: name.replace(/^_/, ""), dir: versionDir, draft: isDraftFolder(name) };
    try {
      const policy = loadPolicySet(versionDir, policyLoadOptions(config));
      return { ...base, valid: true, problems: [], warnings: policy.warnings, tests: runPolicyTests(policy), coverage: endpointCoverage(policy) };
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      return { ...base, valid: false, problems: error.problems, warnings: [], tests: [], coverage: null };
    }
  });
  return { reports, problems: survey.problems, dir };
}

const failedTests = (r: VersionReport): PolicyTestResult[] => r.tests.filter((t) => !t.passed);
const label = (r: VersionReport): string => (r.draft ? `_${r.version} (draft)` : r.version);

/** `policy validate [target] [--json]`: every problem of every version at once, with file, line and field path; exit 1 on any. */
export async function policyValidate(target: string | undefined, flags: { config?: string; json?: boolean }): Promise<number> {
  const { reports, problems } = checkTarget(target, flags);
  const ok = problems.length === 0 && reports.every((r) => r.valid && failedTests(r).length === 0);
  if (flags.json === true) {
    const versions = reports.map((r) => ({ version: r.version, dir: r.dir, draft: r.draft, valid: r.valid, problems: r.problems, warnings: r.warnings, tests: { passed: r.tests.length - failedTests(r).length, failed: failedTests(r) } }));
    process.stdout.write(`${JSON.stringify({ ok, problems, versions })}\n`);
    return ok ? 0 : 1;
  }
  for (const p of problems) process.stdout.write(`${formatProblem(p)}\n`);
  for (const r of reports) {
    if (!r.valid) {
      process.stdout.write(`${label(r)}: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}\n${r.problems.map((p) => `  ${formatProblem(p)}`).join("\n")}\n`);
      continue;
    }
    const bad = failedTests(r);
    process.stdout.write(`${label(r)}: valid, ${r.tests.length - bad.length}/${r.tests.length} policy tests pass${r.warnings.length === 0 ? "" : `, ${r.warnings.length} warning${r.warnings.length === 1 ? "" : "s"}`}\n`);
    for (const w of r.warnings) process.stdout.write(`  warning: ${formatProblem(w)}\n`);
    for (const t of bad) process.stdout.write(`  FAIL ${t.file}: ${t.name}: expected ${t.expected}, got ${t.actual}\n`);
  }
  return ok ? 0 : 1;
}

/** `policy test [target] [--json]`: one line per case, a summary per version with endpoint × role coverage; exit 1 on any failure. */
export async function policyTest(target: string | undefined, flags: { config?: string; json?: boolean }): Promise<number> {
  const { reports, problems } = checkTarget(target, flags);
  const ok = problems.length === 0 && reports.every((r) => r.valid && failedTests(r).length === 0);
  if (flags.json === true) {
    process.stdout.write(`${JSON.stringify({ ok, problems, versions: reports.map(({ version, dir, draft, valid, problems: p, tests, coverage }) => ({ version, dir, draft, valid, problems: p, tests, coverage })) })}\n`);
    return ok ? 0 : 1;
  }
  for (const p of problems) process.stdout.write(`${formatProblem(p)}\n`);
  for (const r of reports) {
    if (!r.valid) {
      process.stdout.write(`${label(r)}: not valid, no tests run\n${r.problems.map((p) => `  ${formatProblem(p)}`).join("\n")}\n`);
      continue;
    }
    for (const t of r.tests) process.stdout.write(t.passed ? `ok    ${t.file}: ${t.name}\n` : `FAIL  ${t.file}: ${t.name}: expected ${t.expected}, got ${t.actual}\n`);
    const bad = failedTests(r).length;
    const c = r.coverage;
    const missing = c === null || c.missing.length === 0 ? "" : `; not covered: ${c.missing.slice(0, 10).map((m) => `${m.endpoint} as ${m.role}`).join(", ")}${c.missing.length > 10 ? `, and ${c.missing.length - 10} more` : ""}`;
    process.stdout.write(`${label(r)}: ${r.tests.length - bad} passed, ${bad} failed; endpoint × role cells covered by request tests: ${c?.covered ?? 0}/${c?.cells ?? 0}${missing}\n`);
  }
  return ok ? 0 : 1;
}

/** `policy new <version> [--from <version>]`: a draft copy to edit. */
export async function policyNew(version: string, flags: { config?: string; from?: string }): Promise<number> {
  const root = policyRoot(operatorConfig(flags.config).policy.dir);
  const made = newDraft(root, version, flags.from);
  process.stdout.write(`created draft ${made.draft} from ${made.from} in ${made.dir}\nedit it, then: gerbang policy test ${made.draft} && gerbang policy publish ${made.draft}\n`);
  return 0;
}

/** `policy publish <draft>`: validated, tested, renamed into place; not activated. */
export async function policyPublish(draft: string, flags: { config?: string }): Promise<number> {
  const config = operatorConfig(flags.config);
  const published = publishDraft(policyRoot(config.policy.dir), draft, policyLoadOptions(config));
  process.stdout.write(`published ${published.version} (${published.dir}); not active yet: gerbang policy activate ${published.version}\n`);
  return 0;
}

/** `policy reload`: the running gateway re-reads its folder; a refused version leaves the active one serving (exit 1). */
export async function policyReload(flags: CommonFlags): Promise<number> {
  const result = await operate(operatorConfig(flags.config), "policy.reload", {});
  if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.outcome === "activated") process.stdout.write(`activated ${result.version} (was ${result.previous})\n`);
  else if (result.outcome === "unchanged") process.stdout.write(`unchanged: ${result.version} is active\n`);
  else process.stdout.write(`refused ${result.version}; the active version keeps serving:\n${result.problems.map((p) => `  ${p}`).join("\n")}\n`);
  return result.outcome === "refused" ? 1 : 0;
}

function printActivation(result: ActivationResult, json: boolean | undefined): void {
  if (json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.outcome === "unchanged") process.stdout.write(`unchanged: ${result.record.version} is already active\n`);
  else process.stdout.write(`activated ${result.record.version}${result.previous === null ? "" : ` (was ${result.previous})`}, digest ${result.record.digest.slice(0, 12)}\n`);
}

/** `policy activate <version>`: refused (exit 1, with every problem) unless the version validates and passes its tests. */
export async function policyActivate(version: string, flags: CommonFlags & { reason?: string }): Promise<number> {
  printActivation(await operate(operatorConfig(flags.config), "policy.activate", { version, ...(flags.reason === undefined ? {} : { reason: flags.reason }) }), flags.json);
  return 0;
}

export async function policyRollback(flags: CommonFlags & { reason?: string }): Promise<number> {
  printActivation(await operate(operatorConfig(flags.config), "policy.rollback", flags.reason === undefined ? {} : { reason: flags.reason }), flags.json);
  return 0;
}

/** `policy status`: exit 1 when an instance does not serve the recorded version. */
export async function policyStatus(flags: CommonFlags): Promise<number> {
  const status = await operate(operatorConfig(flags.config), "policy.status", {});
  const lagging = status.instances.filter((i) => i.state !== "serving" || i.version !== status.active?.version);
  if (flags.json === true) process.stdout.write(`${JSON.stringify(status)}\n`);
  else {
    const a = status.active;
    process.stdout.write(a === null ? "no version recorded as active yet\n" : `active: ${a.version} (digest ${a.digest.slice(0, 12)}) since ${a.activatedAt} by ${a.activatedBy}${a.reason === null ? "" : `: ${a.reason}`}\n`);
    process.stdout.write(`instances (${status.instances.length}):\n`);
    for (const i of status.instances) process.stdout.write(`  ${i.host} pid ${i.pid}\t${i.version}\t${i.state}${i.problem === null ? "" : `\t${i.problem}`}\tseen ${i.seenAt}\n`);
    process.stdout.write("history:\n");
    for (const h of status.history) process.stdout.write(`  ${h.activatedAt}\t${h.version}\t${h.activatedBy}${h.reason === null ? "" : `\t${h.reason}`}\n`);
  }
  return lagging.length === 0 ? 0 : 1;
}
