import type { PrismaClient } from "../generated/prisma/client.ts";

/** One activation: the version every instance must serve from then on, and who asked for it and why. */
export interface ActivationRecord {
  id: string;
  version: string;
  digest: string;
  activatedBy: string;
  reason: string | null;
  activatedAt: string;
}

/** A running instance as its last heartbeat described it. */
export interface InstanceStatus {
  id: string;
  host: string;
  pid: number;
  version: string;
  digest: string;
  /** "serving": the recorded version; "refused": it could not load it and serves `version` instead. */
  state: "serving" | "refused";
  problem: string | null;
  startedAt: string;
  seenAt: string;
}

type Row = { id: bigint; version: string; digest: string; activatedBy: string; reason: string | null; activatedAt: Date };
const view = (r: Row): ActivationRecord => ({ id: String(r.id), version: r.version, digest: r.digest, activatedBy: r.activatedBy, reason: r.reason, activatedAt: r.activatedAt.toISOString() });

/** The recorded active policy version and its history (PostgreSQL or the embedded database), and instance heartbeats. */
export class ActivationStore {
  private readonly prisma: PrismaClient;

  constructor(prisma: PrismaClient) {
    this.prisma = prisma;
  }

  async active(): Promise<ActivationRecord | null> {
    const row = await this.prisma.policyActivation.findFirst({ orderBy: { id: "desc" } });
    return row === null ? null : view(row);
  }

  async history(limit = 20): Promise<ActivationRecord[]> {
    return (await this.prisma.policyActivation.findMany({ orderBy: { id: "desc" }, take: limit })).map(view);
  }

  async record(entry: { version: string; digest: string; activatedBy: string; reason?: string | null }): Promise<ActivationRecord> {
    return view(await this.prisma.policyActivation.create({ data: { version: entry.version, digest: entry.digest, activatedBy: entry.activatedBy, reason: entry.reason ?? null } }));
  }

  /**
   * Records `entry` only when nothing is recorded yet, and returns what is then active: of several
   * instances starting at once on an empty database, exactly one choice wins and all of them serve it.
   */
  async recordInitial(entry: { version: string; digest: string; activatedBy: string; reason?: string | null }): Promise<ActivationRecord> {
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`LOCK TABLE "policy_activation" IN SHARE ROW EXCLUSIVE MODE`;
      const existing = await tx.policyActivation.findFirst({ orderBy: { id: "desc" } });
      if (existing !== null) return view(existing);
      return view(await tx.policyActivation.create({ data: { version: entry.version, digest: entry.digest, activatedBy: entry.activatedBy, reason: entry.reason ?? null } }));
    });
  }

  async heartbeat(instance: Omit<InstanceStatus, "seenAt">): Promise<void> {
    const data = { ...instance, startedAt: new Date(instance.startedAt), seenAt: new Date() };
    await this.prisma.gatewayInstance.upsert({ where: { id: instance.id }, create: data, update: data });
  }

  async forget(id: string): Promise<void> {
    await this.prisma.gatewayInstance.deleteMany({ where: { id } });
  }

  /** Instances heard from within `withinMs`; older rows are instances that stopped without saying so. */
  async instances(withinMs: number): Promise<InstanceStatus[]> {
    const rows = await this.prisma.gatewayInstance.findMany({ where: { seenAt: { gte: new Date(Date.now() - withinMs) } }, orderBy: { startedAt: "asc" } });
    return rows.map((r) => ({ ...r, state: r.state === "refused" ? "refused" : "serving", startedAt: r.startedAt.toISOString(), seenAt: r.seenAt.toISOString() }));
  }
}
