// A user's own data, as they may take it away (GDPR-style access and portability): the profile,
// their sessions, their API keys' metadata and the audit events they are the actor or the target
// of. Never a secret: no session token, key, password hash or cookie leaves through here.
import Type from "#typebox";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { ApiKeyService, KeyView } from "../keys/apiKeyService.ts";
import { USER_SELECT, userView, type UserView } from "./userOperations.ts";

/** An export stops at this many audit events (the newest), and says so. */
export const EXPORT_MAX_EVENTS = 50_000;

export const ExportInput = Type.Object({ email: Type.String({ minLength: 3, maxLength: 320 }) }, { additionalProperties: false });

export interface UserExport {
  format: "gerbang.user-export/1";
  exportedAt: string;
  profile: UserView;
  sessions: Array<{ id: string; createdAt: string; updatedAt: string; expiresAt: string; ipAddress: string | null; userAgent: string | null; impersonatedBy: string | null }>;
  apiKeys: KeyView[];
  auditEvents: Array<{ at: string; action: string; allowed: boolean; reason: string; method: string | null; path: string | null; status: number | null; endpointId: string | null; policyVersion: string; authMethod: string; keyId: string | null; clientIp: string | null; target: string | null; requestId: string | null; asActor: boolean }>;
  auditEventsTruncated: boolean;
}

export async function exportUser(prisma: PrismaClient, keys: ApiKeyService, userId: string): Promise<UserExport | null> {
  const user = await prisma.user.findUnique({ where: { id: userId }, select: USER_SELECT });
  if (user === null) return null;
  const [sessions, apiKeys, events] = await Promise.all([
    prisma.session.findMany({ where: { userId }, select: { id: true, createdAt: true, updatedAt: true, expiresAt: true, ipAddress: true, userAgent: true, impersonatedBy: true }, orderBy: { createdAt: "asc" } }),
    keys.list({}, userId),
    prisma.auditEvent.findMany({
      where: { OR: [{ principalId: userId }, { target: userId }] },
      select: { at: true, action: true, allowed: true, reason: true, method: true, path: true, status: true, endpointId: true, policyVersion: true, authMethod: true, keyId: true, clientIp: true, target: true, requestId: true, principalId: true },
      orderBy: { id: "desc" },
      take: EXPORT_MAX_EVENTS + 1,
    }),
  ]);
  const iso = (d: Date): string => d.toISOString();
  return {
    format: "gerbang.user-export/1",
    exportedAt: new Date().toISOString(),
    profile: userView(user),
    sessions: sessions.map((s) => ({ ...s, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt), expiresAt: iso(s.expiresAt) })),
    apiKeys,
    auditEvents: events.slice(0, EXPORT_MAX_EVENTS).map(({ principalId, at, ...e }) => ({ ...e, at: iso(at), asActor: principalId === userId })),
    auditEventsTruncated: events.length > EXPORT_MAX_EVENTS,
  };
}
