import { existsSync } from "node:fs";
import { join } from "node:path";
import type { GerbangConfig } from "../config/schema.ts";
import { OperationError } from "./operationError.ts";
import { formatProblem, PolicyError, type PolicySet } from "../policy/policySet.ts";
import { loadActivePolicy, policyRoot } from "../runtime/activePolicy.ts";
import { isFolderName, surveyPolicyFolder } from "../policy/policyFolder.ts";


/** A version or draft read afresh from policy.dir, to explain or diff against; refused with its problems when invalid. */
export function loadVersionForAsking(config: GerbangConfig, name: string): PolicySet {
  const dir = join(policyRoot(config.policy.dir), name);
  // Names only, never paths: the admin API takes what a caller sends.
  if (!isFolderName(name) || !existsSync(join(dir, "manifest.yaml"))) {
    throw new OperationError(`no policy version or draft ${name} in policy.dir`);
  }
  try {
    return loadActivePolicy(config, dir);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    throw new OperationError(`${name} is not valid: ${error.problems.slice(0, 10).map(formatProblem).join("; ")}`);
  }
}

export interface VersionEntry {
  name: string;
  draft: boolean;
  created: string | null;
  /** This instance serves it. */
  active: boolean;
  valid: boolean;
}

/** The versions and drafts under policy.dir, for the playground's pickers; validity read afresh. */
export function listVersions(config: GerbangConfig, serving: string): VersionEntry[] {
  return surveyPolicyFolder(policyRoot(config.policy.dir)).folders.map((f) => {
    let valid = true;
    try {
      loadActivePolicy(config, f.dir);
    } catch {
      valid = false;
    }
    return { name: f.name, draft: f.draft, created: f.created, active: !f.draft && f.name === serving, valid };
  });
}
