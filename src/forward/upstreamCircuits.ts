import type { UpstreamConfig } from "../config/schema.ts";
import { CircuitBreaker, type CircuitState } from "./circuitBreaker.ts";

/** undici's default connect timeout: a trial may take that long to connect, and then timeoutMs for headers. */
const UNDICI_CONNECT_TIMEOUT_MS = 10_000;

/** One circuit breaker per configured upstream, by name: a dead upstream never closes off another. */
export class UpstreamCircuits {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(upstreams: readonly UpstreamConfig[], onChange: (upstream: string, state: CircuitState, detail: { failures: number; openMs: number }) => void) {
    for (const upstream of upstreams) {
      const { failureThreshold, openMs, maxOpenMs } = upstream.circuitBreaker;
      this.breakers.set(
        upstream.name,
        new CircuitBreaker({ failureThreshold, openMs, maxOpenMs, trialTimeoutMs: upstream.timeoutMs + UNDICI_CONNECT_TIMEOUT_MS + 1000, onChange: (state, detail) => onChange(upstream.name, state, detail) }),
      );
    }
  }

  get(name: string): CircuitBreaker {
    const breaker = this.breakers.get(name);
    if (breaker === undefined) throw new Error(`no circuit for upstream ${name}`);
    return breaker;
  }

  /** Every upstream's circuit state, for the metrics. */
  get states(): Array<{ upstream: string; state: CircuitState }> {
    return [...this.breakers].map(([upstream, b]) => ({ upstream, state: b.status.state }));
  }

  /** Names of upstreams whose circuit is not closed, for /readyz. */
  get failing(): string[] {
    return [...this.breakers].filter(([, b]) => b.status.state !== "closed").map(([name]) => name);
  }
}
