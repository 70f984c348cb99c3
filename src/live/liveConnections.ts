import type { Principal } from "../auth/principal.ts";
import type { Authenticator } from "../auth/authenticators/authenticator.ts";
import type { UpstreamConfig } from "../config/schema.ts";

/** A connection authorized once that stays open (a WebSocket, a streamed response). */
export interface LiveConnection {
  readonly kind: "websocket" | "stream";
  /** Who it was authorized for, at the handshake or the request, and with what credential (none: anonymous). */
  readonly principal: Principal;
  readonly credential: { authenticator: Authenticator; value: string } | undefined;
  /** What was authorized: the request as the policy saw it. */
  readonly method: string;
  readonly path: string;
  readonly upstream: UpstreamConfig;
  /** The resource and fields a body-reading decision was taken on (a streamed answer to a POST), to take it again. */
  readonly input?: { resource: Record<string, unknown>; fields: readonly string[] };
  readonly address: string;
  /** Ends it, saying why (a WebSocket: a close frame with the code, 1008 unless said; a stream: cut). */
  close(reason: string, code?: number): void;
}

/** Checks of one revocation in flight at once. */
const CONCURRENT_CHECKS = 16;

/** Which connections a revocation may concern: one user's, one key's, or every one. */
export type Concerned = { kind: "user"; id: string } | { kind: "key"; id: string } | { kind: "all" };

/** Answers why a connection may not stay open (a close reason), or null if it may. */
export type Recheck = (connection: LiveConnection) => Promise<string | null>;

/** The principal's own counting key: a user across sessions, an API key by itself; anonymous has none. */
export const principalKey = (principal: Principal): string | null =>
  principal.key !== undefined ? `key:${principal.key.id}` : principal.userId === null ? null : `user:${principal.userId}`;

/**
 * The open long-lived connections of this instance. Whenever a revocation could concern one (the
 * invalidation bus: sign-out, ban, role change, key revocation; a policy activation; a periodic
 * sweep for expiry), it is authorized again and closed if it no longer may stay open. Other
 * instances hear the same bus message and do the same for theirs.
 */
export class LiveConnections {
  private readonly open = new Set<LiveConnection>();
  private readonly perPrincipal = new Map<string, number>();
  private readonly perAddress = new Map<string, number>();
  private readonly recheck: Recheck;
  private readonly onError: (error: unknown) => void;

  constructor(recheck: Recheck, onError: (error: unknown) => void) {
    this.recheck = recheck;
    this.onError = onError;
  }

  get size(): number {
    return this.open.size;
  }

  /** Open WebSockets of a principal and of an address (the handshake's limits). */
  counts(principal: Principal, address: string): { principal: number; address: number } {
    const key = principalKey(principal);
    return { principal: key === null ? 0 : (this.perPrincipal.get(key) ?? 0), address: this.perAddress.get(address) ?? 0 };
  }

  /** Counts revocations: a connection authenticated before the latest one may have missed it. */
  private revocations = 0;

  /** Read when a request is authenticated, handed back to `add`: revocations in between are not missed. */
  get generation(): number {
    return this.revocations;
  }

  /**
   * Registers a connection; the function returned removes it (once, however often it is called).
   * `since`: the generation when its credential was checked; a revocation since then checks it at once.
   */
  add(connection: LiveConnection, since?: number): () => void {
    this.open.add(connection);
    const counted = connection.kind === "websocket";
    const key = principalKey(connection.principal);
    if (counted) {
      if (key !== null) bump(this.perPrincipal, key, 1);
      bump(this.perAddress, connection.address, 1);
    }
    if (since !== undefined && since < this.revocations) void this.check(connection);
    return () => {
      if (!this.open.delete(connection) || !counted) return;
      if (key !== null) bump(this.perPrincipal, key, -1);
      bump(this.perAddress, connection.address, -1);
    };
  }

  /**
   * Authorizes again every connection the revocation may concern, closing those that may not stay; a
   * few at a time, so a sweep of thousands never asks the database for all of them at once.
   */
  async revoke(concerned: Concerned): Promise<number> {
    this.revocations += 1;
    const queue = [...this.open].filter((c) => concerns(concerned, c.principal));
    let closed = 0;
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) if (await this.check(next)) closed += 1;
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_CHECKS, queue.length) }, worker));
    return closed;
  }

  /** True if the connection was closed. */
  private async check(connection: LiveConnection): Promise<boolean> {
    let reason: string | null;
    try {
      reason = await this.recheck(connection);
    } catch (error) {
      // Could not be authorized again (the database away): fail safe, close it.
      this.onError(error);
      reason = "authorization could not be checked again";
    }
    if (reason === null || !this.open.has(connection)) return false;
    connection.close(reason);
    return true;
  }

  /** Closes every connection (the gateway stopping). */
  closeAll(reason: string): void {
    for (const connection of [...this.open]) connection.close(reason, 1001);
  }
}

function concerns(concerned: Concerned, principal: Principal): boolean {
  if (concerned.kind === "all") return true;
  if (concerned.kind === "key") return principal.key?.id === concerned.id;
  // A user's change concerns their sessions and their keys (a ban, a role change reach both).
  return principal.userId === concerned.id;
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}
