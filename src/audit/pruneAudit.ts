import type { PrismaClient } from "../generated/prisma/client.ts";
import { checkpointPayload } from "./auditChain.ts";

export interface PruneResult {
  deleted: number;
  /** The chains that were cut, with where each now starts. */
  cut: Array<{ instance: string; throughSeq: string }>;
}

/**
 * Deletes events older than `before` without breaking verification: for each chain, the rows up to
 * its last one older than `before` go, and a signed retention checkpoint keeps that row's hash, from
 * which `audit verify` continues. One pruner at a time (an advisory lock); an instance still writing
 * the chain is unaffected (it only ever appends).
 */
export async function pruneAudit(prisma: PrismaClient, before: Date, sign: (payload: string) => Promise<{ kid: string; signature: string }>): Promise<PruneResult> {
  return prisma.$transaction(
    async (tx) => {
      const [lock] = await tx.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(hashtext('gerbang.audit.prune')) AS locked`;
      if (lock?.locked !== true) return { deleted: 0, cut: [] };
      const heads = await tx.$queryRaw<Array<{ instance: string; seq: bigint }>>`
        SELECT instance, MAX(seq) AS seq FROM audit_event WHERE instance IS NOT NULL AND at < ${before} GROUP BY instance ORDER BY instance`;
      let deleted = 0;
      const cut: PruneResult["cut"] = [];
      for (const head of heads) {
        const row = await tx.auditEvent.findUnique({ where: { instance_seq: { instance: head.instance, seq: head.seq } }, select: { hash: true } });
        if (row?.hash === null || row?.hash === undefined) continue;
        const at = new Date();
        const c = { instance: head.instance, seq: head.seq, hash: row.hash, kind: "retention", at };
        const signed = await sign(checkpointPayload(c));
        await tx.auditCheckpoint.create({ data: { ...c, kid: signed.kid, signature: signed.signature } });
        const gone = await tx.auditEvent.deleteMany({ where: { instance: head.instance, seq: { lte: head.seq } } });
        await tx.auditCheckpoint.deleteMany({ where: { instance: head.instance, seq: { lt: head.seq } } });
        deleted += gone.count;
        cut.push({ instance: head.instance, throughSeq: head.seq.toString() });
      }
      // Rows from before the chain existed have nothing to keep verifiable.
      deleted += (await tx.auditEvent.deleteMany({ where: { hash: null, at: { lt: before } } })).count;
      return { deleted, cut };
    },
    { timeout: 120_000 },
  );
}
