import type { PrismaClient } from "../generated/prisma/client.ts";

export interface AuditRecord {
  at: Date;
  requestId: string;
  method: string;
  path: string;
  principalId: string | null;
  authMethod: string;
  roles: string;
  allowed: boolean;
  reason: string;
  ruleId: string | null;
  policyVersion: string;
  upstream: string | null;
  status: number;
  endpointId: string | null;
  /** Comma-separated; set on a field denial. */
  blockedFields: string | null;
  /** JSON text of what the decision read (see recordDecision), or null when there was no decision. */
  decisionInput: string | null;
}

/**
 * Decisions are written in batches off the request path. While the database is unreachable rows
 * wait in memory up to `maxBuffer`; beyond that the oldest are dropped and counted (`dropped`),
 * so an outage degrades the audit trail visibly instead of stalling traffic.
 */
export class AuditWriter {
  private buffer: AuditRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  dropped = 0;
  written = 0;

  private readonly prisma: PrismaClient;
  private readonly options: { flushIntervalMs: number; maxBuffer: number; batchSize?: number; onError?: (error: unknown) => void };

  constructor(
    prisma: PrismaClient,
    options: { flushIntervalMs: number; maxBuffer: number; batchSize?: number; onError?: (error: unknown) => void },
  ) {
    this.prisma = prisma;
    this.options = options;
  }

  record(row: AuditRecord): void {
    this.buffer.push(row);
    if (this.buffer.length > this.options.maxBuffer) {
      this.dropped += this.buffer.length - this.options.maxBuffer;
      this.buffer.splice(0, this.buffer.length - this.options.maxBuffer);
    }
    this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.options.flushIntervalMs);
    this.timer.unref();
  }

  get pending(): number {
    return this.buffer.length;
  }

  async flush(): Promise<void> {
    if (this.flushing !== null) return this.flushing;
    this.flushing = this.drain().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    const batchSize = this.options.batchSize ?? 5000;
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, batchSize);
      try {
        await this.insert(batch);
      } catch (error) {
        this.options.onError?.(error);
        this.schedule();
        return;
      }
      this.buffer.splice(0, batch.length);
      this.written += batch.length;
    }
  }

  /**
   * One statement of 16 array parameters, whatever the batch size: Prisma's createMany compiles a
   * query with a parameter per cell, which costs more CPU than the requests being audited.
   */
  private async insert(batch: AuditRecord[]): Promise<void> {
    const column = <K extends keyof AuditRecord>(key: K): Array<AuditRecord[K]> => batch.map((row) => row[key]);
    await this.prisma.$executeRaw`INSERT INTO "audit_decision"
      ("at", "request_id", "method", "path", "principal_id", "auth_method", "roles", "allowed", "reason", "rule_id", "policy_version", "upstream", "status", "endpoint_id", "blocked_fields", "decision_input")
      SELECT * FROM unnest(
        ${column("at").map((d) => d.toISOString())}::timestamptz[], ${column("requestId")}::text[], ${column("method")}::text[], ${column("path")}::text[],
        ${column("principalId")}::text[], ${column("authMethod")}::text[], ${column("roles")}::text[], ${column("allowed")}::boolean[],
        ${column("reason")}::text[], ${column("ruleId")}::text[], ${column("policyVersion")}::text[], ${column("upstream")}::text[], ${column("status")}::int[],
        ${column("endpointId")}::text[], ${column("blockedFields")}::text[], ${column("decisionInput")}::jsonb[])`;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
