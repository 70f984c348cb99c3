import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { GerbangConfig } from "../config/schema.ts";
import type { PolicyStore } from "../policy/policyStore.ts";
import { policyRoot } from "../runtime/activePolicy.ts";
import type { ActivationRecord, ActivationStore } from "./activationStore.ts";
import { checkVersion } from "./checkVersion.ts";

export interface PolicySyncOptions {
  config: GerbangConfig;
  store: PolicyStore;
  activations: ActivationStore;
  /** Digest of the version the store serves at start. */
  digest: string;
  log: (level: "info" | "error", msg: string, detail: Record<string, unknown>) => void;
  /** Told of every version this instance activates (the reloader keeps versions immutable with it). */
  onActivated?: (version: string, digest: string) => void;
  /** A recorded activation this instance cannot serve (said once per record). */
  onRefused?: (version: string) => void;
}

/** How often an instance reports itself; `policy status` lists those heard from within three of these. */
export const HEARTBEAT_MS = 5000;

/**
 * Keeps this instance on the recorded active version: on a Redis message (at once), on every
 * `policy.activationCheckMs` (the safety net when a message was missed or Redis is down), and on
 * demand. A recorded version this instance cannot load, or whose folder differs from the digest
 * recorded at activation, is refused: the current version keeps serving and the instance is not ready.
 * Work is serialized, so a reload and a check never interleave.
 */
export class PolicySync {
  private readonly options: PolicySyncOptions;
  private readonly instanceId = randomUUID();
  private readonly startedAt = new Date().toISOString();
  private digest: string;
  private refusal: { recordId: string; problem: string } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];

  constructor(options: PolicySyncOptions) {
    this.options = options;
    this.digest = options.digest;
  }

  /** Why the recorded version is not served here, or null when it is. */
  get problem(): string | null {
    return this.refusal?.problem ?? null;
  }

  /** Runs `work` after everything queued before it; its failure does not stop the queue. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Brings this instance to the recorded version if it is not there (never throws; refusals are kept and logged). */
  check(): Promise<void> {
    return this.exclusive(async () => {
      let record: ActivationRecord | null;
      try {
        record = await this.options.activations.active();
      } catch {
        return; // the database is away: keep serving what we have; the next check tries again
      }
      if (record === null) return;
      const before = `${this.options.store.current.policy.version} ${this.refusal?.recordId ?? ""}`;
      this.apply(record);
      // A change is reported at once, not at the next heartbeat: `policy status` must not show the old state.
      if (`${this.options.store.current.policy.version} ${this.refusal?.recordId ?? ""}` !== before) await this.beat();
    });
  }

  /** This instance activated a version itself (a reload) and it was recorded. */
  activatedHere(version: string, digest: string): void {
    this.digest = digest;
    this.refusal = null;
    this.options.onActivated?.(version, digest);
    void this.beat();
  }

  private apply(record: ActivationRecord): void {
    const { store, config, log } = this.options;
    const current = store.current.policy;
    if (record.version === current.version && record.digest === this.digest) {
      this.refusal = null;
      return;
    }
    const dir = join(policyRoot(config.policy.dir), record.version);
    const checked = existsSync(join(dir, "manifest.yaml")) ? checkVersion(config, dir) : { ok: false as const, problems: [`no version folder ${record.version} in ${policyRoot(config.policy.dir)}`] };
    let problem: string | null = null;
    if (!checked.ok) problem = checked.problems.slice(0, 5).join("; ");
    else if (checked.digest !== record.digest) problem = `the folder of ${record.version} differs from the one activated (digest ${record.digest.slice(0, 12)}…, here ${checked.digest.slice(0, 12)}…); versions are immutable`;
    if (problem !== null || !checked.ok) {
      if (this.refusal?.recordId !== record.id) {
        log("error", "activated policy version refused; the current version keeps serving", { version: record.version, active: current.version, problem });
        this.options.onRefused?.(record.version);
      }
      this.refusal = { recordId: record.id, problem: `version ${record.version}: ${problem ?? "refused"}` };
      return;
    }
    store.activate(checked.policy);
    this.activatedHere(checked.policy.version, checked.digest);
    log("info", "policy activated", { version: record.version, previous: current.version, activatedBy: record.activatedBy });
  }

  private started = false;

  /** Reports this instance (never throws: with the database away, the next beat tries again). */
  private async beat(): Promise<void> {
    if (!this.started) return;
    await this.options.activations
      .heartbeat({
        id: this.instanceId,
        host: hostname(),
        pid: process.pid,
        version: this.options.store.current.policy.version,
        digest: this.digest,
        state: this.refusal === null ? "serving" : "refused",
        problem: this.refusal?.problem ?? null,
        startedAt: this.startedAt,
      })
      .catch(() => undefined);
  }

  /** Starts the periodic check and the heartbeat. */
  start(): void {
    this.started = true;
    void this.beat();
    this.timers = [setInterval(() => void this.check(), this.options.config.policy.activationCheckMs), setInterval(() => void this.beat(), HEARTBEAT_MS)];
    for (const timer of this.timers) timer.unref();
  }

  async close(): Promise<void> {
    this.started = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.options.activations.forget(this.instanceId).catch(() => undefined);
  }
}
