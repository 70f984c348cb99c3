import Type, { type Static } from "#typebox";
import type { Prisma, PrismaClient } from "../generated/prisma/client.ts";

/** The filters of `gerbang audit search` and `GET /admin/api/audit`, defined once. */
export const AuditFilters = Type.Object(
  {
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "user id of the actor" })),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "API key id" })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: "^[a-z_.]+\\*?$", description: "an action, or a prefix ending in * (auth.*)" })),
    decision: Type.Optional(Type.Union([Type.Literal("allow"), Type.Literal("deny")])),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    requestId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    policyVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    since: Type.Optional(Type.String({ format: "date-time" })),
    until: Type.Optional(Type.String({ format: "date-time" })),
    /** Paging: only events older than this id (the previous page's `next`). */
    before: Type.Optional(Type.String({ pattern: "^[0-9]{1,19}$" })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
export type AuditFilters = Static<typeof AuditFilters>;

export interface AuditEventView {
  id: string;
  at: string;
  instance: string | null;
  action: string;
  actor: string | null;
  key: string | null;
  authMethod: string;
  roles: string;
  clientIp: string | null;
  target: string | null;
  decision: "allow" | "deny";
  reason: string;
  rule: string | null;
  endpoint: string | null;
  policyVersion: string;
  requestId: string | null;
  traceId: string | null;
  method: string | null;
  path: string | null;
  status: number | null;
  details: unknown;
}

export interface AuditPage {
  events: AuditEventView[];
  /** Pass as `before` for the next page; null on the last. */
  next: string | null;
}

export function auditWhere(f: AuditFilters): Prisma.AuditEventWhereInput {
  const at = { ...(f.since === undefined ? {} : { gte: new Date(f.since) }), ...(f.until === undefined ? {} : { lt: new Date(f.until) }) };
  return {
    ...(f.actor === undefined ? {} : { principalId: f.actor }),
    ...(f.key === undefined ? {} : { keyId: f.key }),
    ...(f.action === undefined ? {} : f.action.endsWith("*") ? { action: { startsWith: f.action.slice(0, -1) } } : { action: f.action }),
    ...(f.decision === undefined ? {} : { allowed: f.decision === "allow" }),
    ...(f.reason === undefined ? {} : { reason: f.reason }),
    ...(f.requestId === undefined ? {} : { requestId: f.requestId }),
    ...(f.policyVersion === undefined ? {} : { policyVersion: f.policyVersion }),
    ...(Object.keys(at).length === 0 ? {} : { at }),
    ...(f.before === undefined ? {} : { id: { lt: BigInt(f.before) } }),
  };
}

/** Newest first. `visible`: what the asker may see (accessibleBy), ANDed with the filters. */
export async function searchAudit(prisma: PrismaClient, filters: AuditFilters, visible: Prisma.AuditEventWhereInput = {}): Promise<AuditPage> {
  const limit = filters.limit ?? 100;
  const rows = await prisma.auditEvent.findMany({ where: { AND: [visible, auditWhere(filters)] }, orderBy: { id: "desc" }, take: limit + 1 });
  const events = rows.slice(0, limit).map(
    (r): AuditEventView => ({
      id: r.id.toString(),
      at: r.at.toISOString(),
      instance: r.instance,
      action: r.action,
      actor: r.principalId,
      key: r.keyId,
      authMethod: r.authMethod,
      roles: r.roles,
      clientIp: r.clientIp,
      target: r.target,
      decision: r.allowed ? "allow" : "deny",
      reason: r.reason,
      rule: r.ruleId,
      endpoint: r.endpointId,
      policyVersion: r.policyVersion,
      requestId: r.requestId,
      traceId: r.traceId,
      method: r.method,
      path: r.path,
      status: r.status,
      details: r.details,
    }),
  );
  return { events, next: rows.length > limit ? (events.at(-1)?.id ?? null) : null };
}

/** One line an event, for a terminal. */
export const formatEvent = (e: AuditEventView): string =>
  [e.id, e.at, e.action, e.decision, e.reason, e.actor ?? (e.key === null ? "anonymous" : `key:${e.key}`), e.target ?? "-", e.method === null ? "" : `${e.method} ${e.path ?? ""}`, e.status ?? ""]
    .join("  ")
    .trimEnd();
