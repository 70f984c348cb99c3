import { parseDuration } from "../keys/duration.ts";
import { formatEvent, type AuditFilters } from "../audit/searchAudit.ts";
import { CliError } from "./cliError.ts";
import { operate, operatorConfig } from "./operate.ts";

export interface AuditSearchFlags extends Omit<AuditFilters, "limit" | "decision"> {
  config?: string;
  json?: boolean;
  decision?: string;
  limit?: string;
  /** Follow `next` until the end (export). */
  all?: boolean;
}

/** A duration back from now (24h) or a date-time (2026-12-01T00:00:00Z), as ISO text. */
function instant(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const sec = parseDuration(value);
  if (sec !== null) return new Date(Date.now() - sec * 1000).toISOString();
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime())) throw new CliError(`${flag} takes a duration back from now (24h, 7d) or a date-time (2026-12-01T00:00:00Z), not ${value}`);
  return at.toISOString();
}

/** `audit verify`: exit 0 only when every chain and checkpoint checks out. */
export async function auditVerify(flags: { config?: string; json?: boolean; since?: string }): Promise<number> {
  const config = operatorConfig(flags.config);
  const since = instant("--since", flags.since);
  const report = await operate(config, "audit.verify", since === undefined ? {} : { since });
  if (flags.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const lines = [
      `${report.chains} chain(s), ${report.rows} event(s), ${report.checkpoints} signed checkpoint(s)${report.legacyRows > 0 ? `; ${report.legacyRows} event(s) from before the chain (not verifiable)` : ""}`,
      ...report.findings.map((f) => `FAIL ${f.kind}: ${f.instance === null ? "" : `chain ${f.instance}: `}${f.message}`),
      report.ok ? "audit trail intact" : `audit trail TAMPERED: ${report.findings.length} finding(s)`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return report.ok ? 0 : 1;
}

export async function auditSearch(flags: AuditSearchFlags): Promise<number> {
  const config = operatorConfig(flags.config);
  if (flags.decision !== undefined && flags.decision !== "allow" && flags.decision !== "deny") throw new CliError(`--decision is allow or deny, not ${flags.decision}`);
  const limit = flags.limit === undefined ? undefined : Number(flags.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) throw new CliError(`--limit is 1 to 1000, not ${flags.limit ?? ""}`);
  if (flags.before !== undefined && !/^[0-9]{1,19}$/.test(flags.before)) throw new CliError(`--before takes an event id, not ${flags.before}`);
  const since = instant("--since", flags.since);
  const until = instant("--until", flags.until);
  const filters: AuditFilters = {
    ...(flags.actor === undefined ? {} : { actor: flags.actor }),
    ...(flags.key === undefined ? {} : { key: flags.key }),
    ...(flags.action === undefined ? {} : { action: flags.action }),
    ...(flags.decision === undefined ? {} : { decision: flags.decision }),
    ...(flags.reason === undefined ? {} : { reason: flags.reason }),
    ...(flags.requestId === undefined ? {} : { requestId: flags.requestId }),
    ...(flags.policyVersion === undefined ? {} : { policyVersion: flags.policyVersion }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    ...(flags.before === undefined ? {} : { before: flags.before }),
    ...(limit === undefined ? {} : { limit }),
  };
  let page = await operate(config, "audit.search", filters);
  for (;;) {
    for (const e of page.events) process.stdout.write(`${flags.json === true ? JSON.stringify(e) : formatEvent(e)}\n`);
    if (flags.all !== true || page.next === null) break;
    page = await operate(config, "audit.search", { ...filters, before: page.next });
  }
  if (flags.all !== true && page.next !== null && flags.json !== true) process.stderr.write(`more: --before ${page.next}\n`);
  return 0;
}

export async function auditPrune(flags: { config?: string; json?: boolean; olderThan?: string }): Promise<number> {
  const config = operatorConfig(flags.config);
  const given = flags.olderThan ?? (config.audit.retentionDays === undefined ? undefined : `${config.audit.retentionDays}d`);
  if (given === undefined) throw new CliError("audit prune needs --older-than (e.g. 90d) or audit.retentionDays in the config");
  const sec = parseDuration(given);
  if (sec === null) throw new CliError(`--older-than takes a duration such as 90d, not ${given}`);
  const result = await operate(config, "audit.prune", { olderThanSec: sec });
  if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${result.deleted} event(s) deleted; ${result.cut.length} chain(s) now start at a signed retention checkpoint\n`);
  return 0;
}
