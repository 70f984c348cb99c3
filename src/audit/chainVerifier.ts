import { canonicalEvent, chainHash, GENESIS_HASH, type AuditEventContent } from "./auditChain.ts";

export interface ChainRow {
  id: bigint;
  instance: string;
  seq: bigint;
  prevHash: string;
  hash: string;
  content: AuditEventContent;
}

export type FindingKind = "edited" | "deleted" | "inserted" | "reordered" | "truncated" | "rewritten" | "checkpoint" | "unchained";

export interface ChainFinding {
  kind: FindingKind;
  instance: string | null;
  /** The row the finding is about (the first after a gap, for "deleted"). */
  id?: string;
  seq?: string;
  message: string;
}

/** Where a chain starts being verified: its genesis, a retention checkpoint, or the first row read (`--since`). */
export interface ChainAnchor {
  seq: bigint;
  hash: string;
}

/** A checkpoint whose signature has been checked: the chain must pass through (seq, hash). */
export interface TrustedHead {
  id: bigint;
  seq: bigint;
  hash: string;
}

const rowName = (r: ChainRow): string => `row ${r.id} (seq ${r.seq})`;

/**
 * Verifies one instance's chain from rows in seq order, one row behind (each row is judged with its
 * successor in view: a row the successor links past was inserted; a successor linking to its
 * predecessor's place means the two were swapped). After a finding it resynchronises on what the
 * rows themselves say, so one tampering is reported once and later ones still are.
 */
export class ChainVerifier {
  readonly findings: ChainFinding[] = [];
  private readonly headFindings: ChainFinding[] = [];
  rows = 0;
  private prev: { seq: bigint; hash: string } | null;
  private pending: ChainRow | null = null;
  private skipNext = false;
  private last: ChainRow | null = null;
  private readonly instance: string;
  private readonly heads: Map<bigint, TrustedHead>;

  constructor(instance: string, anchor: ChainAnchor | null, heads: readonly TrustedHead[] = []) {
    this.instance = instance;
    // null: trust the first row's link (verification of a window that starts mid-chain).
    this.prev = anchor;
    this.heads = new Map(heads.map((h) => [h.seq, h]));
  }

  static genesis(): ChainAnchor {
    return { seq: 0n, hash: GENESIS_HASH };
  }

  push(row: ChainRow): void {
    this.rows += 1;
    const head = this.heads.get(row.seq);
    // Reported after the row-level findings: those name the row that was touched, this only a consequence.
    if (head !== undefined && head.hash !== row.hash) {
      this.headFindings.push({ kind: "rewritten", instance: this.instance, id: row.id.toString(), seq: row.seq.toString(), message: `${rowName(row)} differs from signed checkpoint ${head.id}: the chain was rewritten up to here` });
    }
    if (this.pending !== null) this.judge(this.pending, row);
    this.pending = row;
    this.last = row;
  }

  end(): ChainFinding[] {
    if (this.pending !== null) this.judge(this.pending, null);
    this.pending = null;
    this.findings.push(...this.headFindings);
    const lastSeq = this.last?.seq ?? this.prev?.seq ?? 0n;
    for (const head of this.heads.values()) {
      if (head.seq > lastSeq) {
        this.findings.push({
          kind: "truncated",
          instance: this.instance,
          seq: head.seq.toString(),
          message: `chain ends at seq ${lastSeq} but signed checkpoint ${head.id} says it reached seq ${head.seq}: the tail was deleted`,
        });
        break;
      }
    }
    return this.findings;
  }

  private find(kind: FindingKind, row: ChainRow, message: string): void {
    this.findings.push({ kind, instance: this.instance, id: row.id.toString(), seq: row.seq.toString(), message });
  }

  private judge(r: ChainRow, next: ChainRow | null): void {
    if (this.skipNext) {
      this.skipNext = false;
      return;
    }
    const p = this.prev;
    this.prev = { seq: r.seq, hash: r.hash };
    if (p === null) {
      if (!contentMatches(r)) this.find("edited", r, `${rowName(r)} does not match its hash: it was edited`);
      return;
    }
    const linked = r.prevHash === p.hash;
    const skippedOver = next !== null && next.prevHash === p.hash;
    if (skippedOver && r.prevHash === next.hash) {
      this.find("reordered", r, `${rowName(r)} and row ${next.id} (seq ${next.seq}) are in each other's places: the rows were reordered`);
      // Both are consumed: the chain continues after the later of the two originals.
      this.prev = { seq: next.seq, hash: r.hash };
      this.skipNext = true;
      return;
    }
    if (skippedOver) {
      this.find("inserted", r, `${rowName(r)} is not part of the chain (its successor links to the row before it): it was inserted`);
      this.prev = p;
      return;
    }
    if (!linked) {
      if (r.seq > p.seq + 1n) {
        this.find("deleted", r, `${r.seq - p.seq - 1n} row(s) between seq ${p.seq} and ${rowName(r)} are missing: they were deleted`);
      } else if (contentMatches(r)) {
        this.find("deleted", r, `${rowName(r)} does not follow the row before it (seq ${p.seq}): rows were deleted and the rest renumbered`);
      } else {
        this.find("edited", r, `${rowName(r)} does not match its hash or its predecessor: it was edited`);
      }
      return;
    }
    if (!contentMatches(r)) this.find("edited", r, `${rowName(r)} does not match its hash: it was edited`);
  }
}

const contentMatches = (r: ChainRow): boolean => chainHash(r.prevHash, canonicalEvent(r.instance, r.content)) === r.hash;
