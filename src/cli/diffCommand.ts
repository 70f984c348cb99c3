import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { diffVersions, formatDiff } from "../policy/diffVersions.ts";
import { formatReplay } from "../audit/replayAudit.ts";
import { parseDuration } from "../keys/duration.ts";
import { loadActivePolicy, policyRoot } from "../runtime/activePolicy.ts";
import { CliError } from "./cliError.ts";
import { operate, operatorConfig } from "./operate.ts";

export interface DiffFlags {
  config?: string;
  json?: boolean;
  replay?: string;
}

/**
 * `policy diff <from> <to>`: every permission cell and rule that changed, derived from the two compiled
 * versions (drafts too); with --replay, the audited decisions of that window decided again under <to>.
 */
export async function policyDiff(fromName: string, toName: string, flags: DiffFlags): Promise<number> {
  const config = operatorConfig(flags.config);
  const root = policyRoot(config.policy.dir);
  const dirOf = (name: string): string => (existsSync(join(root, name, "manifest.yaml")) ? join(root, name) : resolve(name));
  const sinceSec = flags.replay === undefined ? undefined : parseDuration(flags.replay);
  if (sinceSec === null) throw new CliError(`--replay takes a duration such as 90s, 15m, 24h or 7d, not ${flags.replay ?? ""}`);
  // The replay runs where the audit log is (the gateway, on the embedded database), so <to> is named as policy.dir has it.
  if (sinceSec !== undefined && !existsSync(join(root, toName, "manifest.yaml"))) throw new CliError(`--replay needs <to> as a version or draft name under ${root}`);
  const from = loadActivePolicy(config, dirOf(fromName));
  const diff = diffVersions(from, loadActivePolicy(config, dirOf(toName)));
  const replay = sinceSec === undefined ? null : await operate(config, "policy.replay", { from: from.version, to: toName, sinceMs: sinceSec * 1000 });
  if (flags.json === true) process.stdout.write(`${JSON.stringify({ diff, replay })}\n`);
  else process.stdout.write(formatDiff(diff) + (replay === null ? "" : formatReplay(replay)));
  return 0;
}
