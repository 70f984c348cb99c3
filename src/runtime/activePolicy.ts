import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { GerbangConfig } from "../config/schema.ts";
import { listPolicyVersions, loadPolicySet, type LoadPolicyOptions } from "../policy/loadPolicySet.ts";
import { DEMO_PRINCIPALS } from "../demo/demoUsers.ts";
import { PolicyError, type PolicySet } from "../policy/policySet.ts";
import { PACKAGE_ROOT } from "./migrationsDir.ts";

/** The policy folder relative to the working directory; the default falls back to the package's own. */
export function policyRoot(dir: string): string {
  const local = resolve(dir);
  return dir === "policies" && !existsSync(local) ? resolve(PACKAGE_ROOT, "policies") : local;
}

/** The folder of the configured version, or of the newest by manifest.created. */
export function activeVersionDir(config: GerbangConfig): string {
  const root = policyRoot(config.policy.dir);
  const [newest, next] = config.policy.version === undefined ? listPolicyVersions(root) : [];
  // The newest by created must be one version, never whichever the folder listing happened to put first.
  if (newest !== undefined && next !== undefined && newest.created === next.created) {
    throw new PolicyError([{ file: join(next.version, "manifest.yaml"), path: "/created", reason: `same created as ${newest.version}: which version is newest is a tie; give each its own created, or set policy.version` }]);
  }
  const version = config.policy.version ?? newest?.version;
  if (version === undefined) throw new Error(`no policy version found in ${root}`);
  return resolve(root, version);
}

/** The configured version, or the newest by manifest.created; throws PolicyError when invalid. */
export function loadActivePolicy(config: GerbangConfig, dir = activeVersionDir(config)): PolicySet {
  return loadPolicySet(dir, policyLoadOptions(config));
}

/** How this configuration loads a version: path matching, and the demo's accounts for request cases that name them. */
export function policyLoadOptions(config: GerbangConfig): LoadPolicyOptions {
  return { caseInsensitivePaths: config.policy.caseInsensitivePaths, knownUsers: DEMO_PRINCIPALS };
}
