import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { listPolicyVersions, loadPolicySet } from "../policy/loadPolicySet.ts";
import { PolicyError } from "../policy/policySet.ts";
import { runPolicyTests } from "../policy/runPolicyTests.ts";
import { PACKAGE_ROOT } from "../runtime/migrationsDir.ts";
import { CliError } from "./cliError.ts";

/** `policy validate [dir]`: a version folder, or a folder of versions (default ./policies). */
export async function policyCommand(argv: string[]): Promise<number> {
  const [sub, target, ...extra] = argv;
  if (sub !== "validate" || extra.length > 0) throw new CliError(`usage: policy validate [dir]`);
  const dir = resolve(target ?? (existsSync("policies") ? "policies" : join(PACKAGE_ROOT, "policies")));
  const versions = existsSync(join(dir, "manifest.yaml")) ? [dir] : listPolicyVersions(dir).map((v) => v.dir);
  if (versions.length === 0) {
    process.stderr.write(`no policy versions in ${dir}\n`);
    return 1;
  }
  let failed = false;
  for (const versionDir of versions) {
    try {
      const policy = loadPolicySet(versionDir);
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
