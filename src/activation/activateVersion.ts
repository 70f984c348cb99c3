import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import type { GerbangConfig } from "../config/schema.ts";
import { listPolicyVersions } from "../policy/loadPolicySet.ts";
import { policyRoot } from "../runtime/activePolicy.ts";
import type { InvalidationBus } from "../keys/invalidationBus.ts";
import { OperationError } from "../admin/operationError.ts";
import type { ActivationRecord, ActivationStore, InstanceStatus } from "./activationStore.ts";
import { checkVersion } from "./checkVersion.ts";
import { HEARTBEAT_MS } from "./policySync.ts";

interface ActivationContext {
  actor?: string;
  config: GerbangConfig;
  activations: ActivationStore;
  bus: InvalidationBus;
}

export interface ActivationResult {
  outcome: "activated" | "unchanged";
  record: ActivationRecord;
  previous: string | null;
}

/** The OS user and host of this process: who ran a command from a shell. */
export const operator = (): string => {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): the host still says where it came from
  }
  return `${user}@${hostname()}`;
};

/**
 * Records `version` as the one every instance serves, after reading it afresh from policy.dir: a
 * version that fails validation or its own tests is never recorded. Instances follow over Redis at
 * once, or at their next periodic check.
 */
export async function activateVersion(ctx: ActivationContext, version: string, reason: string | null, expectDigest?: string): Promise<ActivationResult> {
  const root = policyRoot(ctx.config.policy.dir);
  const known = listPolicyVersions(root).map((v) => v.version);
  if (version.startsWith("_")) throw new OperationError(`${version} is a draft: publish it first (gerbang policy publish ${version}), then activate ${version.slice(1)}`);
  // policy.dir is not named: this message may go out over the admin API.
  if (!known.includes(version)) throw new OperationError(`no policy version ${version} in policy.dir (there: ${known.join(", ") || "none"})`);
  const checked = checkVersion(ctx.config, join(root, version));
  if (!checked.ok) throw new OperationError(`version ${version} is not activated:\n${checked.problems.map((p) => `  ${p}`).join("\n")}`);
  if (expectDigest !== undefined && checked.digest !== expectDigest) {
    throw new OperationError(`version ${version} changed since it was active (versions are immutable); create a new version folder instead`);
  }
  const active = await ctx.activations.active();
  if (active !== null && active.version === version && active.digest === checked.digest) return { outcome: "unchanged", record: active, previous: null };
  const record = await ctx.activations.record({ version, digest: checked.digest, activatedBy: ctx.actor ?? operator(), reason });
  await ctx.bus.publish({ kind: "policy" });
  return { outcome: "activated", record, previous: active?.version ?? null };
}

/** Activates the version that was active before the current one, exactly as it was then. */
export async function rollbackVersion(ctx: ActivationContext, reason: string | null): Promise<ActivationResult> {
  const [active, ...older] = await ctx.activations.history(100);
  const previous = older.find((r) => r.version !== active?.version);
  if (active === undefined || previous === undefined) throw new OperationError("nothing to roll back to: no other version was ever active");
  return activateVersion(ctx, previous.version, reason ?? `rollback from ${active.version}`, previous.digest);
}

export interface PolicyStatus {
  active: ActivationRecord | null;
  history: ActivationRecord[];
  instances: InstanceStatus[];
}

export async function policyStatus(ctx: ActivationContext): Promise<PolicyStatus> {
  const [history, instances] = await Promise.all([ctx.activations.history(10), ctx.activations.instances(3 * HEARTBEAT_MS)]);
  return { active: history[0] ?? null, history, instances };
}
