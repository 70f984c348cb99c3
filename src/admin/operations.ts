import Type, { type Static, type TSchema } from "#typebox";
import Value from "#typebox/value";
import type { GerbangConfig } from "../config/schema.ts";
import type { Auth } from "../auth/createAuth.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { ApiKeyService, KeyView } from "../keys/apiKeyService.ts";
import { GerbangError } from "../errors/catalogue.ts";
import type { ReloadOutcome } from "../runtime/policyReloader.ts";
import { OperationError } from "./operationError.ts";
import type { ActivationStore } from "../activation/activationStore.ts";
import type { InvalidationBus } from "../keys/invalidationBus.ts";
import type { ReplaySummary } from "../audit/replayAudit.ts";
import { activateVersion, operator, policyStatus, rollbackVersion } from "../activation/activateVersion.ts";
import type { AuditWriter } from "../audit/auditWriter.ts";
import { AuditFilters } from "../audit/searchAudit.ts";
import { instanceEvent } from "../audit/instanceEvent.ts";
import { ExportInput, exportUser, type UserExport } from "./exportUser.ts";
import { OutboxInput, listOutbox } from "./listOutbox.ts";
import { BanInput, DeleteInput, PurgeInput, RestoreInput, deleteUser, purgeUsers, restoreDeletedUser, Email, PRINTABLE, RevokeSessionsInput, SetAttributesInput, SetRoleInput, UnbanInput, USER_SELECT, UsersListInput, banUser, listUsers, revokeSessions, setAttributes, setRole, unbanUser, userView, type UserView } from "./userOperations.ts";

export type { UserView };

/** What an operation runs against: the CLI's own connections, or those of the running gateway. */

export interface OperatorServices {
  /** Who the activation history names; absent: the OS user and host of this process. */
  actor?: string;
  config: GerbangConfig;
  prisma: PrismaClient;
  /** Better Auth, loaded on first use (the CLI's read-only commands never need it). */
  auth(): Promise<Auth>;
  keys: ApiKeyService;
  activations: ActivationStore;
  /** Publishes what every instance must apply at once (an activation, a revoked key). */
  bus: InvalidationBus;
  /** Only a running gateway can reload its policy. */
  reloadPolicy?: () => Promise<ReloadOutcome>;
  /** Where changes are audited (the gateway's writer, or the CLI's own chain). */
  audit?: AuditWriter;
  /** Who asked, for the audit event: the signed-in admin's user id (admin API), or none (a shell). */
  caller?: { userId: string | null; authMethod: string; roles: string; requestId: string | null };
}


async function ownerId(s: OperatorServices, email: string): Promise<string> {
  const user = await s.prisma.user.findUnique({ where: { email: email.toLowerCase() }, select: { id: true } });
  if (user === null) throw new OperationError(`no user with email ${email}`);
  return user.id;
}

// Business refusals (unknown tier, revoked key…) carry their catalogue message; nothing else leaves.
async function refusalsAsMessages<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof GerbangError) throw new OperationError(error.message);
    throw error;
  }
}

const Id = Type.String({ minLength: 1, maxLength: 200 });

function op<I extends TSchema, O>(input: I, run: (s: OperatorServices, input: Static<I>) => Promise<O>): { input: I; run: (s: OperatorServices, input: Static<I>) => Promise<O> } {
  return { input, run };
}

/**
 * Every operator action, defined once: `gerbang users|keys|policy …` runs them against its own
 * database connection, or asks the running gateway to (src/admin/adminServer.ts) when that gateway
 * holds the embedded database, which only one process may open.
 */
export const OPERATIONS = {
  "users.create": op(
    Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 1024 }), role: Type.String({ minLength: 1 }), name: Type.Optional(Type.String()), attributes: Type.Record(Type.String(), Type.String()) }, { additionalProperties: false }),
    async (s, input): Promise<UserView> => {
      let id: string;
      try {
        // Loaded here: it brings Better Auth, which the read-only commands never need.
        const { createVerifiedUser } = await import("../auth/createUser.ts");
        id = await createVerifiedUser(await s.auth(), s.prisma, input);
      } catch (error) {
        // Better Auth's refusals (taken email) and ours (unknown role, short password) are meant for the
        // operator; anything else (a database error) stays in the log.
        const body = (error as { body?: { message?: unknown } }).body;
        if (typeof body?.message === "string") throw new OperationError(body.message);
        if (error instanceof Error && error.name === "Error") throw new OperationError(error.message);
        throw error;
      }
      const user = await s.prisma.user.findUniqueOrThrow({ where: { id }, select: USER_SELECT });
      return userView(user);
    },
  ),
  "users.list": op(UsersListInput, listUsers),
  "outbox.list": op(OutboxInput, (s, input) => listOutbox(s.prisma, input, s.config.auth.phone.defaultCountry)),
  "users.set-role": op(SetRoleInput, setRole),
  "users.set-attr": op(SetAttributesInput, setAttributes),
  "users.ban": op(BanInput, banUser),
  "users.unban": op(UnbanInput, unbanUser),
  "users.revoke-sessions": op(RevokeSessionsInput, revokeSessions),
  "users.delete": op(DeleteInput, deleteUser),
  "users.restore": op(RestoreInput, restoreDeletedUser),
  "users.purge": op(PurgeInput, purgeUsers),
  "users.export": op(ExportInput, async (s, input): Promise<UserExport> => {
    const user = await s.prisma.user.findUnique({ where: { email: input.email.toLowerCase() }, select: { id: true } });
    const data = user === null ? null : await exportUser(s.prisma, s.keys, user.id);
    if (data === null) throw new OperationError(`no user with email ${input.email}`);
    return data;
  }),
  "users.show": op(Type.Object({ email: Email }, { additionalProperties: false }), async (s, input): Promise<UserView & { keys: KeyView[] }> => {
    const user = await s.prisma.user.findUnique({ where: { email: input.email.toLowerCase() }, select: USER_SELECT });
    if (user === null) throw new OperationError(`no user with email ${input.email}`);
    return { ...userView(user), keys: await s.keys.list({}, user.id) };
  }),
  "keys.create": op(
    Type.Object({ owner: Email, name: Type.String({ minLength: 1 }), tier: Type.String({ minLength: 1 }), scopes: Type.Array(Type.String()), expiresInSec: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
    async (s, input): Promise<{ key: string; view: KeyView }> =>
      refusalsAsMessages(
        (async () =>
          s.keys.create({ ownerId: await ownerId(s, input.owner), name: input.name, tier: input.tier, scopes: input.scopes, ...(input.expiresInSec === undefined ? {} : { expiresInSec: input.expiresInSec }) }))(),
      ),
  ),
  "keys.list": op(Type.Object({ owner: Type.Optional(Email) }, { additionalProperties: false }), async (s, input): Promise<KeyView[]> =>
    refusalsAsMessages((async () => s.keys.list({}, input.owner === undefined ? undefined : await ownerId(s, input.owner)))()),
  ),
  "keys.revoke": op(Type.Object({ id: Id }, { additionalProperties: false }), async (s, input): Promise<KeyView> => refusalsAsMessages(s.keys.revoke(input.id, {}))),
  "keys.rotate": op(Type.Object({ id: Id, graceSec: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }), async (s, input): Promise<{ key: string; view: KeyView; previous: KeyView }> =>
    refusalsAsMessages(s.keys.rotate(input.id, input.graceSec, {})),
  ),
  "policy.activate": op(Type.Object({ version: Type.String({ minLength: 1, maxLength: 64 }), reason: Type.Optional(Type.String({ maxLength: 500, pattern: PRINTABLE })) }, { additionalProperties: false }), async (s, input) =>
    activateVersion(s, input.version, input.reason ?? null),
  ),
  "policy.rollback": op(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500, pattern: PRINTABLE })) }, { additionalProperties: false }), async (s, input) => rollbackVersion(s, input.reason ?? null)),
  "policy.replay": op(
    Type.Object({ from: Type.String({ minLength: 1, maxLength: 64 }), to: Type.String({ minLength: 1, maxLength: 65 }), sinceMs: Type.Integer({ minimum: 1000, maximum: 90 * 86_400_000 }), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })) }, { additionalProperties: false }),
    async (s, input): Promise<ReplaySummary> => {
      const [{ replayAudit }, { loadVersionForAsking }] = await Promise.all([import("../audit/replayAudit.ts"), import("./versionForAsking.ts")]);
      return replayAudit(s.prisma, input.from, loadVersionForAsking(s.config, input.to), input.sinceMs, input.limit ?? 100_000);
    },
  ),
  "audit.verify": op(Type.Object({ since: Type.Optional(Type.String({ format: "date-time" })) }, { additionalProperties: false }), async (s, input) => {
    const [{ verifyAudit }, { readSigningKey, signingKeyOptionsOf }] = await Promise.all([import("../audit/verifyAudit.ts"), import("../identity/signingKey.ts")]);
    const key = await readSigningKey(signingKeyOptionsOf(s.config));
    return verifyAudit(s.prisma, { publicJwk: key?.publicJwk ?? null, ...(input.since === undefined ? {} : { since: new Date(input.since) }) });
  }),
  "audit.search": op(AuditFilters, async (s, input) => (await import("../audit/searchAudit.ts")).searchAudit(s.prisma, input)),
  "audit.prune": op(Type.Object({ olderThanSec: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), async (s, input) => {
    const [{ pruneAudit }, { readSigningKey, signingKeyOptionsOf }, { checkpointSigner }] = await Promise.all([import("../audit/pruneAudit.ts"), import("../identity/signingKey.ts"), import("../audit/checkpointSignature.ts")]);
    const key = await readSigningKey(signingKeyOptionsOf(s.config));
    // An unsigned retention checkpoint would make every later verification fail: refuse instead.
    if (key === null) throw new OperationError("audit prune signs a retention checkpoint with the gateway's signing key, and this machine has none (identity.privateKeyFile or dataDir)");
    return pruneAudit(s.prisma, new Date(Date.now() - input.olderThanSec * 1000), checkpointSigner(key));
  }),
  "policy.status": op(Type.Object({}, { additionalProperties: false }), async (s) => policyStatus(s)),
  "policy.reload": op(Type.Object({}, { additionalProperties: false }), async (s): Promise<ReloadOutcome> => {
    if (s.reloadPolicy === undefined) throw new OperationError("policy reload needs a running gateway");
    return s.reloadPolicy();
  }),
} as const;

export type OperationName = keyof typeof OPERATIONS;
export type OperationInput<N extends OperationName> = Static<(typeof OPERATIONS)[N]["input"]>;
export type OperationOutput<N extends OperationName> = Awaited<ReturnType<(typeof OPERATIONS)[N]["run"]>>;

export const isOperationName = (name: string): name is OperationName => Object.hasOwn(OPERATIONS, name);

/** The audited operations: their action and what they changed (ids only, never a key or an email). */
const AUDITED: Partial<Record<OperationName, { action: string; target: (input: never, output: never) => string | null | string[] }>> = {
  "users.create": { action: "user.created", target: (_i, o: UserView | undefined) => o?.id ?? null },
  "users.set-role": { action: "user.role_changed", target: (_i, o: UserView | undefined) => o?.id ?? null },
  "users.set-attr": { action: "user.attributes_changed", target: (_i, o: UserView | undefined) => o?.id ?? null },
  "users.ban": { action: "user.banned", target: (_i, o: UserView | undefined) => o?.id ?? null },
  "users.unban": { action: "user.unbanned", target: (_i, o: UserView | undefined) => o?.id ?? null },
  "users.revoke-sessions": { action: "session.revoked", target: (_i, o: { user: string } | undefined) => o?.user ?? null },
  "users.delete": { action: "user.deleted", target: (_i, o: { user: string } | undefined) => o?.user ?? null },
  "users.restore": { action: "user.restored", target: (_i, o: UserView | undefined) => o?.id ?? null },
  // One event per purged user (none when nothing was due).
  "users.purge": { action: "user.purged", target: (_i, o: { purged: string[] } | undefined) => o?.purged ?? null },
  "users.export": { action: "user.exported", target: (_i, o: UserExport | undefined) => o?.profile.id ?? null },
  "keys.create": { action: "key.created", target: (_i, o: { view: KeyView } | undefined) => o?.view.id ?? null },
  "keys.revoke": { action: "key.revoked", target: (i: { id: string }) => i.id },
  "keys.rotate": { action: "key.rotated", target: (i: { id: string }) => i.id },
  "policy.activate": { action: "policy.activated", target: (i: { version: string }) => i.version },
  "policy.rollback": { action: "policy.rolled_back", target: (_i, o: { record: { version: string } } | undefined) => o?.record.version ?? null },
  "audit.prune": { action: "audit.pruned", target: () => null },
};

/** Runs one operation, on input checked against its schema here whoever called (the CLI, the admin API). */
export async function runOperation<N extends OperationName>(s: OperatorServices, name: N, input: OperationInput<N>): Promise<OperationOutput<N>> {
  const schema = OPERATIONS[name].input as TSchema;
  const first = [...Value.Errors(schema, input)][0];
  if (first !== undefined) {
    // A printable-text pattern explains itself better than the regular expression would.
    const printable = first.keyword === "pattern" && (first.params as { pattern?: unknown }).pattern === PRINTABLE;
    throw new OperationError(`${first.instancePath.slice(1).replaceAll("/", ".") || "input"}: ${printable ? "must be printable text (no control characters)" : first.message}`);
  }
  // Each entry's run matches its own input; TypeScript cannot correlate the two through the union.
  const run = OPERATIONS[name].run as unknown as (s: OperatorServices, input: OperationInput<N>) => Promise<OperationOutput<N>>;
  const audited = AUDITED[name];
  if (audited === undefined || s.audit === undefined) return run(s, input);
  const audit = s.audit;
  const record = (allowed: boolean, reason: string, output: OperationOutput<N> | undefined): void => {
    const targets = audited.target(input as never, output as never);
    for (const target of Array.isArray(targets) ? targets : [targets]) recordOne(allowed, reason, target);
  };
  const recordOne = (allowed: boolean, reason: string, target: string | null): void =>
    audit.record(
      instanceEvent({
        action: audited.action,
        allowed,
        reason,
        actorId: s.caller?.userId ?? null,
        authMethod: s.caller?.authMethod ?? "cli",
        roles: s.caller?.roles ?? "",
        requestId: s.caller?.requestId ?? null,
        target,
        // A shell's operator is named by OS user and host; a signed-in admin by user id alone (no email).
        details: { operation: name, ...(s.caller === undefined ? { operator: s.actor ?? operator() } : {}) },
      }),
    );
  try {
    const output = await run(s, input);
    record(true, "DONE", output);
    return output;
  } catch (error) {
    record(false, error instanceof OperationError ? "REFUSED" : "FAILED", undefined);
    throw error;
  }
}
