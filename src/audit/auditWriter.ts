import type { PrismaClient } from "../generated/prisma/client.ts";
import type { SqlExecutor } from "../db/sqlExecutor.ts";
import { canonicalEvent, chainHash, checkpointPayload, GENESIS_HASH, storable, storableJson, type AuditEventContent } from "./auditChain.ts";

export interface AuditEvent extends AuditEventContent {
  /**
   * A sampled allow or a rate-limit refusal: shed first when the queue is full. Everything else is a
   * security event (denials, sign-ins, key and policy changes), kept up to the bound.
   */
  sheddable?: boolean;
}

interface ChainedEvent extends AuditEvent {
  seq: bigint;
  prevHash: string;
  hash: string;
}

export type CheckpointKind = "periodic" | "final";

export interface AuditWriterOptions {
  /** This writer's chain: one per process (docs/audit.md explains why not one shared chain). */
  instance: string;
  flushIntervalMs: number;
  /** Events waiting for the database, beyond which sheddable ones go first and then new ones are lost. */
  maxBuffer: number;
  batchSize?: number;
  /** How often the chain head is signed into audit_checkpoint (also at close). */
  checkpointIntervalMs?: number;
  /** Signs a checkpoint payload (a compact JWS); absent, or null (no key here): written unsigned, which verify reports. */
  sign?: (payload: string) => Promise<{ kid: string; signature: string } | null>;
  onError?: (error: unknown) => void;
  /** Security events were lost (the queue was full of them): said once per outage, and counted. */
  onLoss?: (lost: number) => void;
}

/**
 * Events are written in batches off the request path, hash-chained as they leave the queue (a
 * batch keeps its links until the database takes it, so a retry never forks the chain). While the
 * database is unreachable they wait in memory up to `maxBuffer`: sheddable events are shed first
 * (`shed`), then new security events are lost (`lost`); both are counted, never silent.
 */
export class AuditWriter {
  private queue: AuditEvent[] = [];
  private sheddableQueued = 0;
  private inflight: ChainedEvent[] | null = null;
  /** The batch in flight failed once: it may be in the database already, so it goes again as an INSERT that keeps what is there. */
  private inflightRetried = false;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<boolean> | null = null;
  private seq = 0n;
  private head = GENESIS_HASH;
  private checkpointedSeq = 0n;
  private checkpointedAt = Date.now();
  private lossReported = false;
  shed = 0;
  lost = 0;
  written = 0;
  checkpoints = 0;

  private readonly prisma: PrismaClient;
  private readonly sql: SqlExecutor;
  private readonly options: AuditWriterOptions;

  /** `sql`: the same database as `prisma`, for the batch insert. */
  constructor(prisma: PrismaClient, sql: SqlExecutor, options: AuditWriterOptions) {
    this.prisma = prisma;
    this.sql = sql;
    this.options = options;
  }

  get instance(): string {
    return this.options.instance;
  }

  record(event: AuditEvent): void {
    // The batch in flight counts too; it is linked into the chain already, so it is never shed.
    if (this.pending >= this.options.maxBuffer) {
      if (event.sheddable === true) {
        this.shed += 1;
        return;
      }
      const victim = this.sheddableQueued > 0 ? this.queue.findIndex((e) => e.sheddable === true) : -1;
      if (victim < 0) {
        this.lost += 1;
        if (!this.lossReported) {
          this.lossReported = true;
          this.options.onLoss?.(this.lost);
        }
        return;
      }
      this.queue.splice(victim, 1);
      this.sheddableQueued -= 1;
      this.shed += 1;
    }
    this.queue.push(event);
    if (event.sheddable === true) this.sheddableQueued += 1;
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
    return this.queue.length + (this.inflight?.length ?? 0);
  }

  /** Writes what is queued; true when all of it reached the database. A flush already running is joined. */
  flush(): Promise<boolean> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** True when everything queued reached the database. */
  private async drain(): Promise<boolean> {
    const batchSize = this.options.batchSize ?? 5000;
    while (this.inflight !== null || this.queue.length > 0) {
      this.inflight ??= this.link(this.take(batchSize));
      try {
        await this.insert(this.inflight, this.inflightRetried);
      } catch (error) {
        this.inflightRetried = true;
        this.options.onError?.(error);
        this.schedule();
        return false;
      }
      this.written += this.inflight.length;
      this.inflight = null;
      this.inflightRetried = false;
      this.lossReported = false;
    }
    const interval = this.options.checkpointIntervalMs ?? 60_000;
    if (this.seq > this.checkpointedSeq && Date.now() - this.checkpointedAt >= interval) await this.checkpoint("periodic").catch((error: unknown) => this.options.onError?.(error));
    return true;
  }

  private take(n: number): AuditEvent[] {
    const batch = this.queue.splice(0, n);
    for (const e of batch) if (e.sheddable === true) this.sheddableQueued -= 1;
    return batch;
  }

  private link(batch: AuditEvent[]): ChainedEvent[] {
    return batch.map((given) => {
      const event = storableEvent(given);
      this.seq += 1n;
      const prevHash = this.head;
      this.head = chainHash(prevHash, canonicalEvent(this.options.instance, event));
      return { ...event, seq: this.seq, prevHash, hash: this.head };
    });
  }

  /** Signs the chain head into audit_checkpoint, so that a deleted tail up to here is detectable. */
  private async checkpoint(kind: CheckpointKind): Promise<void> {
    const at = new Date();
    const c = { instance: this.options.instance, seq: this.seq, hash: this.head, kind, at };
    const signed = this.options.sign === undefined ? null : await this.options.sign(checkpointPayload(c));
    await this.prisma.auditCheckpoint.create({ data: { ...c, kid: signed?.kid ?? null, signature: signed?.signature ?? null } });
    this.checkpointedSeq = c.seq;
    this.checkpointedAt = at.getTime();
    this.checkpoints += 1;
  }

  /**
   * A fresh batch goes by COPY where the driver has it (PostgreSQL: the least CPU on both sides per
   * row); a batch sent before, or a driver without COPY (PGlite), by one INSERT with the batch as one
   * JSON parameter: Prisma's createMany compiles a parameter per cell and costs more CPU than the
   * requests being audited. ON CONFLICT: a batch the database took without our hearing it is sent
   * again with the same links, and kept once (COPY has no ON CONFLICT, hence the INSERT for retries).
   */
  private async insert(batch: ChainedEvent[], retried: boolean): Promise<void> {
    const copyIn = this.sql.copyIn;
    if (copyIn !== undefined && !retried) {
      await copyIn(COPY_EVENTS, copyText(this.options.instance, batch));
      return;
    }
    const rows = batch.map((r) => ({
      seq: r.seq.toString(),
      prev_hash: r.prevHash,
      hash: r.hash,
      at: r.at.toISOString(),
      action: r.action,
      request_id: r.requestId,
      trace_id: r.traceId,
      method: r.method,
      path: r.path,
      principal_id: r.principalId,
      key_id: r.keyId,
      auth_method: r.authMethod,
      roles: r.roles,
      client_ip: r.clientIp,
      target: r.target,
      allowed: r.allowed,
      reason: r.reason,
      rule_id: r.ruleId,
      policy_version: r.policyVersion,
      upstream: r.upstream,
      status: r.status,
      endpoint_id: r.endpointId,
      blocked_fields: r.blockedFields,
      decision_input: r.decisionInput,
      details: r.details,
    }));
    await this.sql.query(INSERT_EVENTS, [this.options.instance, JSON.stringify(rows)]);
  }

  /**
   * Flushes and writes the final checkpoint; gives up after `deadlineMs` (the database is away at
   * shutdown) and returns how many events were not written.
   */
  async close(deadlineMs = 10_000): Promise<number> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const until = Date.now() + deadlineMs;
    // A flush already running may have started before the last events: one more after it.
    await this.flushing;
    let done = await this.flush();
    while (!done && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      done = await this.flush();
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (done && this.seq > this.checkpointedSeq) await this.checkpoint("final").catch((error: unknown) => this.options.onError?.(error));
    return this.pending;
  }
}

/** Every string as PostgreSQL will give it back, so the stored row hashes to its `hash`. */
function storableEvent(e: AuditEvent): AuditEvent {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(e)) {
    out[key] = typeof value === "string" ? storable(value) : key === "decisionInput" || key === "details" ? storableJson(value) : value;
  }
  return out as unknown as AuditEvent;
}

/** A field of COPY's text format: \\N is null; backslash, newline, carriage return and tab are escaped (storable strings hold no NUL). */
const copyField = (value: string | null): string => (value === null ? "\\N" : /[\\\n\r\t]/.test(value) ? value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c] ?? c) : value);
const COPY_ESCAPES: Readonly<Record<string, string>> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const jsonField = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));

/** The batch as COPY text, one line per event, columns in COPY_EVENTS' order. */
function copyText(instance: string, batch: readonly ChainedEvent[]): string {
  const lead = `${copyField(instance)}\t`;
  let text = "";
  for (const r of batch) {
    text += `${lead}${r.seq}\t${r.prevHash}\t${r.hash}\t${r.at.toISOString()}\t${copyField(r.action)}\t${copyField(r.requestId)}\t${copyField(r.traceId)}\t${copyField(r.method)}\t${copyField(r.path)}\t${copyField(r.principalId)}\t${copyField(r.keyId)}\t${copyField(r.authMethod)}\t${copyField(r.roles)}\t${copyField(r.clientIp)}\t${copyField(r.target)}\t${r.allowed ? "t" : "f"}\t${copyField(r.reason)}\t${copyField(r.ruleId)}\t${copyField(r.policyVersion)}\t${copyField(r.upstream)}\t${r.status === null ? "\\N" : String(r.status)}\t${copyField(r.endpointId)}\t${copyField(r.blockedFields)}\t${copyField(jsonField(r.decisionInput))}\t${copyField(jsonField(r.details))}\n`;
  }
  return text;
}

const COPY_EVENTS = `COPY "audit_event" ("instance", "seq", "prev_hash", "hash", "at", "action", "request_id", "trace_id", "method", "path", "principal_id", "key_id", "auth_method", "roles", "client_ip", "target",
   "allowed", "reason", "rule_id", "policy_version", "upstream", "status", "endpoint_id", "blocked_fields", "decision_input", "details") FROM STDIN`;

const INSERT_EVENTS = `INSERT INTO "audit_event"
  ("instance", "seq", "prev_hash", "hash", "at", "action", "request_id", "trace_id", "method", "path", "principal_id", "key_id", "auth_method", "roles", "client_ip", "target",
   "allowed", "reason", "rule_id", "policy_version", "upstream", "status", "endpoint_id", "blocked_fields", "decision_input", "details")
  SELECT $1::text, x.seq, x.prev_hash, x.hash, x.at, x.action, x.request_id, x.trace_id, x.method, x.path, x.principal_id, x.key_id, x.auth_method, x.roles, x.client_ip, x.target,
   x.allowed, x.reason, x.rule_id, x.policy_version, x.upstream, x.status, x.endpoint_id, x.blocked_fields, x.decision_input, x.details
  FROM json_to_recordset($2::json) AS x(seq bigint, prev_hash text, hash text, at timestamptz, action text, request_id text, trace_id text, method text, path text,
   principal_id text, key_id text, auth_method text, roles text, client_ip text, target text, allowed boolean, reason text, rule_id text, policy_version text,
   upstream text, status int, endpoint_id text, blocked_fields text, decision_input jsonb, details jsonb)
  ON CONFLICT ("instance", "seq") DO NOTHING`;
