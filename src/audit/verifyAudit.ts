import type { JWK } from "jose";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { checkpointPayload, type AuditEventContent, type JsonValue } from "./auditChain.ts";
import { ChainVerifier, type ChainAnchor, type ChainFinding, type TrustedHead } from "./chainVerifier.ts";
import { checkpointSignedBy } from "./checkpointSignature.ts";

export interface VerifyReport {
  ok: boolean;
  chains: number;
  rows: number;
  checkpoints: number;
  /** Rows from before the chain existed (migration 20261203000000): not verifiable, not a failure. */
  legacyRows: number;
  findings: ChainFinding[];
}

const PAGE = 2000;
const MAX_FINDINGS = 100;

type EventRow = Awaited<ReturnType<PrismaClient["auditEvent"]["findMany"]>>[number];

const contentOf = (r: EventRow): AuditEventContent => ({
  at: r.at,
  action: r.action,
  requestId: r.requestId,
  traceId: r.traceId,
  method: r.method,
  path: r.path,
  principalId: r.principalId,
  keyId: r.keyId,
  authMethod: r.authMethod,
  roles: r.roles,
  clientIp: r.clientIp,
  target: r.target,
  allowed: r.allowed,
  reason: r.reason,
  ruleId: r.ruleId,
  policyVersion: r.policyVersion,
  upstream: r.upstream,
  status: r.status,
  endpointId: r.endpointId,
  blockedFields: r.blockedFields,
  decisionInput: r.decisionInput as JsonValue,
  details: r.details as JsonValue,
});

/**
 * Recomputes every chain (or the part of each written since `since`) and checks it against the signed
 * checkpoints: the first edited, deleted, inserted or reordered row of each chain, a tail deleted past
 * a checkpoint, and any row outside every chain newer than the migration that introduced them.
 */
export async function verifyAudit(prisma: PrismaClient, options: { publicJwk: JWK | null; since?: Date }): Promise<VerifyReport> {
  const findings: ChainFinding[] = [];
  const checkpointRows = await prisma.auditCheckpoint.findMany({ orderBy: [{ instance: "asc" }, { seq: "asc" }] });
  const legacyBoundary = checkpointRows.filter((c) => c.kind === "legacy").reduce((max, c) => (c.seq > max ? c.seq : max), 0n);
  const heads = new Map<string, TrustedHead[]>();
  const anchors = new Map<string, ChainAnchor>();
  let checkpoints = 0;
  for (const c of checkpointRows) {
    if (c.kind === "legacy") continue;
    checkpoints += 1;
    const signed = options.publicJwk !== null && c.signature !== null && (await checkpointSignedBy(options.publicJwk, c.signature, checkpointPayload(c)));
    if (!signed) {
      findings.push({
        kind: "checkpoint",
        instance: c.instance,
        seq: c.seq.toString(),
        message: c.signature === null ? `checkpoint ${c.id} is not signed` : options.publicJwk === null ? `checkpoint ${c.id} cannot be checked: no signing key` : `checkpoint ${c.id} has an invalid signature (edited, or signed by another key)`,
      });
      continue;
    }
    if (c.kind === "retention") {
      const anchor = anchors.get(c.instance);
      if (anchor === undefined || c.seq > anchor.seq) anchors.set(c.instance, { seq: c.seq, hash: c.hash });
    } else {
      heads.set(c.instance, [...(heads.get(c.instance) ?? []), { id: c.id, seq: c.seq, hash: c.hash }]);
    }
  }

  const since = options.since;
  const unchained = await prisma.auditEvent.findMany({ where: { hash: null, ...(since === undefined ? {} : { at: { gte: since } }) }, select: { id: true }, orderBy: { id: "asc" } });
  let legacyRows = 0;
  for (const row of unchained) {
    if (row.id <= legacyBoundary) legacyRows += 1;
    else if (findings.length < MAX_FINDINGS) findings.push({ kind: "unchained", instance: null, id: row.id.toString(), message: `row ${row.id} belongs to no chain: it was inserted` });
  }

  let chains = 0;
  let rows = 0;
  const seen = new Set<string>();
  let verifier: ChainVerifier | null = null;
  let current: string | null = null;
  const finish = (): void => {
    if (verifier === null) return;
    findings.push(...verifier.end());
    rows += verifier.rows;
  };
  let cursor: { instance: string; seq: bigint } | null = null;
  for (;;) {
    const page: EventRow[] = await prisma.auditEvent.findMany({
      where: {
        instance: { not: null },
        ...(since === undefined ? {} : { at: { gte: since } }),
        ...(cursor === null ? {} : { OR: [{ instance: { gt: cursor.instance } }, { instance: cursor.instance, seq: { gt: cursor.seq } }] }),
      },
      orderBy: [{ instance: "asc" }, { seq: "asc" }],
      take: PAGE,
    });
    for (const r of page) {
      const seq = r.seq;
      if (r.instance === null || seq === null || r.prevHash === null || r.hash === null) continue;
      if (r.instance !== current) {
        finish();
        current = r.instance;
        seen.add(current);
        chains += 1;
        // Within a window (--since) the first row's link is taken on trust, and earlier checkpoints are moot.
        const chainHeads = heads.get(current) ?? [];
        verifier = new ChainVerifier(current, since === undefined ? (anchors.get(current) ?? ChainVerifier.genesis()) : null, since === undefined ? chainHeads : chainHeads.filter((h) => h.seq >= seq));
      }
      verifier?.push({ id: r.id, instance: r.instance, seq, prevHash: r.prevHash, hash: r.hash, content: contentOf(r) });
    }
    const last = page.at(-1);
    if (last === undefined || page.length < PAGE || last.instance === null || last.seq === null) break;
    cursor = { instance: last.instance, seq: last.seq };
  }
  finish();
  // A chain whose every row is gone still has its checkpoints.
  if (since === undefined) {
    for (const [instance, chainHeads] of heads) {
      if (seen.has(instance)) continue;
      const top = chainHeads.reduce((a, b) => (b.seq > a.seq ? b : a));
      const anchor = anchors.get(instance);
      if (anchor !== undefined && anchor.seq >= top.seq) continue;
      findings.push({ kind: "truncated", instance, seq: top.seq.toString(), message: `no rows left of chain ${instance}, but signed checkpoint ${top.id} says it reached seq ${top.seq}: the rows were deleted` });
    }
  }
  const bounded = findings.slice(0, MAX_FINDINGS);
  return { ok: findings.length === 0, chains, rows, checkpoints, legacyRows, findings: bounded };
}
