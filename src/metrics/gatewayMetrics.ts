import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the scrape reads from the gateway's parts at collection time (no per-request cost). */
export interface MetricSources {
  audit?: () => { pending: number; written: number; shed: number; lost: number; checkpoints: number };
  /** Each upstream's circuit: 0 closed, 1 half-open, 2 open. */
  circuits?: () => ReadonlyArray<{ upstream: string; state: "closed" | "half-open" | "open" }>;
  policyVersion?: () => string;
  /** Hits and misses of the in-process caches (sessions, keys, abilities, resolvers), since start. */
  caches?: () => ReadonlyArray<{ cache: string; hits: number; misses: number }>;
  /** Policy activations and reloads on this instance, by outcome (activated, unchanged, refused). */
  activations?: () => Readonly<Record<string, number>>;
  /** The readiness checks' last results (1 ok, 0 failing), by dependency. */
  dependencies?: () => Promise<ReadonlyArray<{ name: string; up: boolean }>>;
}

const CIRCUIT_VALUE = { closed: 0, "half-open": 1, open: 2 } as const;
// Seconds; the gateway's own work is usually sub-millisecond, the upstream's tens of milliseconds.
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Bound of the pre-bound label children (far above endpoints × decisions × reasons × statuses in practice). */
const MAX_BOUND_CHILDREN = 10_000;

/**
 * The gateway's Prometheus series, one registry per gateway (tests build several in one process).
 * Labels are bounded: endpoint ids, upstream names, decision reasons, statuses and bucket names, never
 * raw paths or user ids.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"endpoint" | "decision" | "reason" | "status">;
  private readonly gatewayDuration: Histogram<"endpoint">;
  private readonly upstreamDuration: Histogram<"upstream">;
  private readonly rateLimited: Counter<"bucket">;
  private readonly children = new Map<string, { requests: Counter.Internal; gateway: Histogram.Internal<"endpoint"> }>();
  private readonly upstreamChildren = new Map<string, Histogram.Internal<"upstream">>();

  constructor(sources: MetricSources = {}) {
    const registers = [this.registry];
    this.requests = new Counter({ name: "gerbang_requests_total", help: "Requests by endpoint id (or the gateway's own route), policy decision, reason and status.", labelNames: ["endpoint", "decision", "reason", "status"], registers });
    this.gatewayDuration = new Histogram({ name: "gerbang_gateway_duration_seconds", help: "Time the gateway itself spent on a request (total minus the upstream's time to its response headers).", labelNames: ["endpoint"], buckets: BUCKETS, registers });
    this.upstreamDuration = new Histogram({ name: "gerbang_upstream_duration_seconds", help: "Time from sending a request upstream to its response headers.", labelNames: ["upstream"], buckets: BUCKETS, registers });
    this.rateLimited = new Counter({ name: "gerbang_rate_limited_total", help: "Requests refused by a rate limit, by bucket (reason).", labelNames: ["bucket"], registers });
    const gauge = (name: string, help: string, read: (() => number) | undefined): void => {
      if (read === undefined) return;
      new Gauge({ name, help, registers, collect() {
        this.set(read());
      } });
    };
    const audit = sources.audit;
    if (audit !== undefined) {
      gauge("gerbang_audit_queue_depth", "Audit events waiting to be written.", () => audit().pending);
      gauge("gerbang_audit_written_total", "Audit events written.", () => audit().written);
      gauge("gerbang_audit_shed_total", "Sampled allows and rate-limit refusals not audited because the queue was full (the database was unreachable too long).", () => audit().shed);
      gauge("gerbang_audit_lost_total", "Security events (denials, sign-ins, changes) lost because the queue was full of them. Alert on any.", () => audit().lost);
      gauge("gerbang_audit_checkpoints_total", "Signed chain checkpoints written.", () => audit().checkpoints);
    }
    if (sources.circuits !== undefined) {
      const circuits = sources.circuits;
      new Gauge({ name: "gerbang_circuit_state", help: "Each upstream's circuit breaker: 0 closed, 1 half-open, 2 open.", labelNames: ["upstream"], registers, collect() {
        for (const c of circuits()) this.set({ upstream: c.upstream }, CIRCUIT_VALUE[c.state]);
      } });
    }
    if (sources.caches !== undefined) {
      const caches = sources.caches;
      for (const [name, key] of [["gerbang_cache_hits_total", "hits"], ["gerbang_cache_misses_total", "misses"]] as const) {
        new Gauge({ name, help: `In-process cache ${key} by cache (sessions, keys, abilities, resolver); the hit ratio is hits / (hits + misses).`, labelNames: ["cache"], registers, collect() {
          for (const c of caches()) this.set({ cache: c.cache }, c[key]);
        } });
      }
    }
    if (sources.activations !== undefined) {
      const activations = sources.activations;
      new Gauge({ name: "gerbang_policy_activations_total", help: "Policy versions this instance was asked to serve (a recorded activation, a reload), by outcome.", labelNames: ["outcome"], registers, collect() {
        for (const [outcome, n] of Object.entries(activations())) this.set({ outcome }, n);
      } });
    }
    if (sources.policyVersion !== undefined) {
      const version = sources.policyVersion;
      new Gauge({ name: "gerbang_policy_info", help: "The policy version this instance serves (value 1).", labelNames: ["version"], registers, collect() {
        this.reset();
        this.set({ version: version() }, 1);
      } });
    }
    if (sources.dependencies !== undefined) {
      const dependencies = sources.dependencies;
      new Gauge({ name: "gerbang_dependency_up", help: "Each readiness check at scrape time: 1 passing, 0 failing (PostgreSQL, Redis, rate limits, policy activation).", labelNames: ["dependency"], registers, async collect() {
        for (const d of await dependencies()) this.set({ dependency: d.name }, d.up ? 1 : 0);
      } });
    }
    collectDefaultMetrics({ register: this.registry, prefix: "gerbang_" });
  }

  /**
   * One request, when its response has gone (onResponse). The label children are bound once per
   * label tuple and found again by one string key: prom-client would otherwise hash a labels object
   * per call. Label values are bounded (endpoint ids, reasons, statuses), and so is this map.
   */
  observe(endpoint: string, decision: string, reason: string, status: number, totalSeconds: number, upstream: { name: string; seconds: number } | null): void {
    const key = `${endpoint}\u0000${decision}\u0000${reason}\u0000${status}`;
    let bound = this.children.get(key);
    if (bound === undefined) {
      if (this.children.size >= MAX_BOUND_CHILDREN) this.children.clear();
      bound = { requests: this.requests.labels({ endpoint, decision, reason, status: String(status) }), gateway: this.gatewayDuration.labels({ endpoint }) };
      this.children.set(key, bound);
    }
    bound.requests.inc();
    bound.gateway.observe(upstream === null ? totalSeconds : Math.max(0, totalSeconds - upstream.seconds));
    if (upstream !== null) {
      let child = this.upstreamChildren.get(upstream.name);
      if (child === undefined) {
        child = this.upstreamDuration.labels({ upstream: upstream.name });
        this.upstreamChildren.set(upstream.name, child);
      }
      child.observe(upstream.seconds);
    }
    if (status === 429) this.rateLimited.inc({ bucket: reason });
  }
}
