import type { PrismaClient } from "../generated/prisma/client.ts";
import { AbilityCache } from "../policy/abilityCache.ts";
import type { PolicySet } from "../policy/policySet.ts";
import { replayDecision } from "../policy/replayDecision.ts";

/** Reasons only the policy gives; rows with any other (rate limits, bad credentials) were not decided by it. */
const POLICY_REASONS = new Set(["ALLOWED_BY_RULE", "ENDPOINT_NOT_MAPPED", "NO_MATCHING_RULE", "CONDITIONS_NOT_MET", "FIELD_NOT_PERMITTED", "DENIED_BY_RULE", "OUTSIDE_KEY_SCOPE"]);
const EXAMPLES = 3;

export interface ReplayCell {
  endpoint: string | null;
  roles: string;
  change: "allow→deny" | "deny→allow";
  count: number;
  /** Request ids to look up in the audit log. */
  examples: string[];
}

export interface ReplaySummary {
  from: string;
  to: string;
  since: string;
  /** Audit rows read in the window (newest first, at most `limit`). */
  rows: number;
  replayed: number;
  unchanged: number;
  allowToDeny: number;
  denyToAllow: number;
  cells: ReplayCell[];
  /** Rows that could not be decided again, by why. */
  skipped: Array<{ why: string; count: number }>;
}

interface Row {
  request_id: string;
  method: string;
  path: string;
  principal_id: string | null;
  auth_method: string;
  roles: string;
  allowed: boolean;
  reason: string;
  decision_input: { resource?: Record<string, unknown>; resourceFrom?: string; fields?: string[]; scopes?: string[]; truncated?: boolean } | null;
}

/**
 * Re-decides the audited decisions of the last `sinceMs` under `to` and counts what would flip, per
 * endpoint and role set. Principals' attributes are read again from the user table (their id is in the
 * row); the resource's attributes, field names and key scopes come from the row itself.
 */
export async function replayAudit(prisma: PrismaClient, from: string, to: PolicySet, sinceMs: number, limit: number): Promise<ReplaySummary> {
  const since = new Date(Date.now() - sinceMs);
  // Only what <from> decided: a row decided by another version (or by <to> itself) says nothing about this change.
  const rows = await prisma.$queryRaw<Row[]>`SELECT request_id, method, path, principal_id, auth_method, roles, allowed, reason, decision_input
    FROM audit_event WHERE action = 'request' AND at >= ${since} AND policy_version = ${from} ORDER BY id DESC LIMIT ${limit}`;
  const ids = [...new Set(rows.flatMap((r) => (r.principal_id === null ? [] : [r.principal_id])))];
  const users = ids.length === 0 ? [] : await prisma.user.findMany({ where: { id: { in: ids } }, select: { id: true, email: true, region: true } });
  const attributesOf = new Map(users.map((u) => [u.id, { id: u.id, email: u.email, ...(u.region === null ? {} : { region: u.region }) }]));
  const cache = new AbilityCache(to);
  const skipped = new Map<string, number>();
  const skip = (why: string): void => void skipped.set(why, (skipped.get(why) ?? 0) + 1);
  const cells = new Map<string, ReplayCell>();
  let replayed = 0;
  let unchanged = 0;
  for (const row of rows) {
    if (!POLICY_REASONS.has(row.reason)) {
      skip("not decided by the policy (credentials, rate limits, errors)");
      continue;
    }
    if (row.decision_input?.truncated === true) {
      skip("inputs not kept (over 2 KB)");
      continue;
    }
    const roles = row.auth_method === "anonymous" ? ["anonymous"] : row.roles.split(",").filter(Boolean);
    const result = replayDecision(cache, {
      requestId: row.request_id,
      method: row.method,
      path: row.path,
      principal: {
        roles,
        attributes: row.principal_id === null ? {} : (attributesOf.get(row.principal_id) ?? { id: row.principal_id }),
        scopes: row.decision_input?.scopes ?? null,
        anonymous: row.auth_method === "anonymous",
      },
      allowed: row.allowed,
      resource: row.decision_input?.resource ?? null,
      resourceFrom: row.decision_input?.resourceFrom ?? null,
      fields: row.decision_input?.fields ?? null,
    });
    if (!result.decided) {
      skip(result.why);
      continue;
    }
    replayed += 1;
    if (result.decision.allowed === row.allowed) {
      unchanged += 1;
      continue;
    }
    const change = row.allowed ? "allow→deny" : "deny→allow";
    const key = `${result.endpointId ?? ""} ${roles.join(",")} ${change}`;
    const cell = cells.get(key) ?? { endpoint: result.endpointId, roles: roles.join(","), change, count: 0, examples: [] };
    cell.count += 1;
    if (cell.examples.length < EXAMPLES) cell.examples.push(row.request_id);
    cells.set(key, cell);
  }
  const flips = [...cells.values()].sort((a, b) => b.count - a.count);
  return {
    from,
    to: to.version,
    since: since.toISOString(),
    rows: rows.length,
    replayed,
    unchanged,
    allowToDeny: flips.filter((c) => c.change === "allow→deny").reduce((n, c) => n + c.count, 0),
    denyToAllow: flips.filter((c) => c.change === "deny→allow").reduce((n, c) => n + c.count, 0),
    cells: flips,
    skipped: [...skipped].map(([why, count]) => ({ why, count })),
  };
}

export function formatReplay(r: ReplaySummary): string {
  const lines = [
    `replay of ${r.rows} decisions ${r.from} made since ${r.since}, under ${r.to}: ${r.replayed} replayed, ${r.unchanged} unchanged, ${r.allowToDeny} allow->deny, ${r.denyToAllow} deny->allow`,
  ];
  for (const c of r.cells) lines.push(`  ${c.change.padEnd(11)} ${String(c.count).padStart(6)}  ${c.endpoint ?? "(no endpoint)"} as ${c.roles || "(no role)"}  e.g. ${c.examples.join(", ")}`);
  for (const s of r.skipped) lines.push(`  not replayed: ${s.count} ${s.why}`);
  return `${lines.join("\n")}\n`;
}
