import { readdirSync } from "node:fs";
import { basename } from "node:path";
import type { GerbangConfig } from "../config/schema.ts";
import { listPolicyVersions } from "../policy/loadPolicySet.ts";
import type { PolicyStore } from "../policy/policyStore.ts";
import { policyDigest } from "../policy/policyDigest.ts";
import { failingTests, readVersion } from "../activation/checkVersion.ts";
import { activeVersionDir, policyRoot } from "./activePolicy.ts";

export type ReloadOutcome =
  | { outcome: "activated"; version: string; previous: string }
  | { outcome: "unchanged"; version: string }
  | { outcome: "refused"; version: string; problems: string[] };

/**
 * Re-reads the policy folder and activates the configured (or newest) version only when it loads,
 * validates and passes its own tests; otherwise the running version keeps serving and the refusal is
 * remembered for /readyz. Versions are immutable: a folder whose bytes changed under the same name is
 * refused, because decisions already audited under that name would no longer mean what they said.
 */
export class PolicyReloader {
  /** Digest of every version this process has activated, by name. */
  private readonly digests = new Map<string, string>();
  private refusal: string | null = null;

  private readonly config: GerbangConfig;
  private readonly store: PolicyStore;

  constructor(
    config: GerbangConfig,
    store: PolicyStore,
  ) {
    this.config = config;
    this.store = store;
    this.digests.set(store.current.policy.version, policyDigest(store.current.policy.dir));
  }

  /** A version this process serves through an activation: from now on it must come back byte for byte. */
  remember(version: string, digest: string): void {
    this.digests.set(version, digest);
  }

  /** The last reload's refusal, until a reload succeeds. */
  get lastRefusal(): string | null {
    return this.refusal;
  }

  /** Never throws: whatever goes wrong is a refusal, and the running version keeps serving. */
  reload(): ReloadOutcome {
    try {
      return this.tryReload();
    } catch (error) {
      return this.refuse(this.config.policy.version ?? "(newest)", [(error as Error).message]);
    }
  }

  private tryReload(): ReloadOutcome {
    const active = this.store.current.policy;
    let dir: string;
    try {
      // "The newest version" must not quietly mean an older one because the newest folder is unreadable.
      if (this.config.policy.version === undefined) {
        const root = policyRoot(this.config.policy.dir);
        const listed = new Set(listPolicyVersions(root).map((v) => v.version));
        const unreadable = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith("_") && !listed.has(e.name));
        if (unreadable.length > 0) return this.refuse("(newest)", unreadable.map((e) => `${e.name}/manifest.yaml: missing or not valid YAML (prefix a draft folder with _ to keep it out)`));
      }
      dir = activeVersionDir(this.config);
    } catch (error) {
      return this.refuse(this.config.policy.version ?? "(newest)", [(error as Error).message]);
    }
    const checked = readVersion(this.config, dir);
    if (!checked.ok) return this.refuse(this.config.policy.version ?? basename(dir), checked.problems);
    const { policy: candidate, digest } = checked;
    // Any version this process has served must come back byte for byte (a rollback included).
    const served = this.digests.get(candidate.version);
    if (served !== undefined && served !== digest) {
      const what = candidate.version === active.version ? "while active" : "since it was served";
      return this.refuse(candidate.version, [`version ${candidate.version} changed on disk ${what}; versions are immutable, create a new version folder`]);
    }
    if (candidate.version === active.version) {
      this.refusal = null;
      return { outcome: "unchanged", version: active.version };
    }
    const failing = failingTests(candidate);
    if (failing.length > 0) return this.refuse(candidate.version, failing);
    this.store.activate(candidate);
    this.digests.set(candidate.version, digest);
    this.refusal = null;
    return { outcome: "activated", version: candidate.version, previous: active.version };
  }

  private refuse(version: string, problems: string[]): ReloadOutcome {
    this.refusal = `version ${version} refused`;
    return { outcome: "refused", version, problems };
  }
}
