import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { listPolicyVersions, loadPolicySet } from "../policy/loadPolicySet.ts";
import { PolicyError } from "../policy/policySet.ts";
import { runPolicyTests } from "../policy/runPolicyTests.ts";
import { policyRoot } from "../runtime/activePolicy.ts";
import type { CommonFlags } from "./main.ts";
import { operate, operatorConfig } from "./operate.ts";
import type { ActivationResult } from "../activation/activateVersion.ts";

/** A path as given, else a version name under the configured policy.dir. */
function targetDir(target: string | undefined, root: string): string {
  if (target === undefined) return root;
  if (existsSync(target)) return resolve(target);
  const named = join(root, target);
  if (existsSync(named)) return named;
  throw new Error(`no policy version or folder ${target} (looked in ${resolve(target)} and ${named})`);
}

/** `policy validate [dir]`: a version folder, a version name under policy.dir, or a folder of versions. */
export async function policyValidate(target: string | undefined, flags: { config?: string }): Promise<number> {
  const config = operatorConfig(flags.config);
  const dir = targetDir(target, policyRoot(config.policy.dir));
  const versions = existsSync(join(dir, "manifest.yaml")) ? [dir] : listPolicyVersions(dir).map((v) => v.dir);
  if (versions.length === 0) {
    process.stderr.write(`gerbang: no policy versions in ${dir}\n`);
    return 1;
  }
  let failed = false;
  for (const versionDir of versions) {
    try {
      const policy = loadPolicySet(versionDir, { caseInsensitivePaths: config.policy.caseInsensitivePaths });
      const results = runPolicyTests(policy);
      const bad = results.filter((r) => !r.passed);
      process.stdout.write(`${policy.version}: valid, ${results.length - bad.length}/${results.length} policy tests pass\n`);
      for (const r of bad) process.stdout.write(`  FAIL ${r.file}: ${r.name}: expected ${r.expected}, got ${r.actual} (${r.reason})\n`);
      failed ||= bad.length > 0;
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      process.stdout.write(`${versionDir}: ${error.message}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
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
