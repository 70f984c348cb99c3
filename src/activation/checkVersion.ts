import { formatProblem, PolicyError, type PolicySet } from "../policy/policySet.ts";
import { policyDigest } from "../policy/policyDigest.ts";
import { runPolicyTests } from "../policy/runPolicyTests.ts";
import type { GerbangConfig } from "../config/schema.ts";
import { loadActivePolicy } from "../runtime/activePolicy.ts";

export type CheckedVersion = { ok: true; policy: PolicySet; digest: string } | { ok: false; problems: string[] };

/** Reads a version folder afresh: it must load and validate, and not change while it is read. */
export function readVersion(config: GerbangConfig, dir: string): CheckedVersion {
  let policy: PolicySet;
  let digest: string;
  try {
    // Digest first (it refuses special files the loader would block on), then load, then digest again:
    // a folder still being written (copied in place rather than renamed in) changes under the loader.
    digest = policyDigest(dir);
    policy = loadActivePolicy(config, dir);
    if (policyDigest(dir) !== digest) {
      return { ok: false, problems: [`version ${policy.version} changed while it was being read; write a version under a _name and rename it when complete`] };
    }
  } catch (error) {
    const problems = error instanceof PolicyError ? error.problems.map(formatProblem) : [(error as Error).message];
    return { ok: false, problems };
  }
  return { ok: true, policy, digest };
}

/** The version's own tests that fail, as problems (none: it may be activated). */
export function failingTests(policy: PolicySet): string[] {
  return runPolicyTests(policy)
    .filter((r) => !r.passed)
    .map((r) => `${r.file}: ${r.name}: expected ${r.expected}, got ${r.actual} (${r.reason})`);
}

/** What activation requires of a version: it reads cleanly and passes its own tests. */
export function checkVersion(config: GerbangConfig, dir: string): CheckedVersion {
  const read = readVersion(config, dir);
  if (!read.ok) return read;
  const problems = failingTests(read.policy);
  return problems.length === 0 ? read : { ok: false, problems };
}
