export interface CircuitBreakerOptions {
  failureThreshold: number;
  openMs: number;
  maxOpenMs: number;
  /** A trial not reported within this is presumed lost, and another may start. */
  trialTimeoutMs: number;
  /** Called on every state change, for the log. */
  onChange?: (state: CircuitState, detail: { failures: number; openMs: number }) => void;
  now?: () => number;
}

export type CircuitState = "closed" | "open" | "half-open";

/**
 * One upstream's circuit. Closed: every request goes through and consecutive transport failures are
 * counted. Open: requests are refused without touching the upstream, so a dead one is not hammered
 * and clients learn at once. After openMs exactly one trial request is let through (half-open); its
 * success closes the circuit, its failure opens it again for twice as long (up to maxOpenMs).
 *
 * Only transport failures count (unreachable, reset, timeout, an answer that is not HTTP): an upstream
 * that answers 5xx is answering, and what it says is its own business.
 */
export class CircuitBreaker {
  private state: CircuitState = "closed";
  private failures = 0;
  private openedAt = 0;
  private currentOpenMs: number;
  /** The ticket of the trial in flight (0: none); a late report of an older trial does not end a newer one. */
  private trial = 0;
  private tickets = 0;
  private trialStartedAt = 0;
  private readonly now: () => number;

  private readonly options: CircuitBreakerOptions;

  constructor(options: CircuitBreakerOptions) {
    this.options = options;
    this.currentOpenMs = options.openMs;
    this.now = options.now ?? Date.now;
  }

  get status(): { state: CircuitState; failures: number; retryAfterMs: number } {
    const retryAfterMs = this.state === "open" ? Math.max(0, this.openedAt + this.currentOpenMs - this.now()) : 0;
    return { state: this.state, failures: this.failures, retryAfterMs };
  }

  /**
   * Whether a request may go to the upstream now. In half-open state the one admitted request is the
   * trial, and its ticket (0 otherwise) goes back with success() or failure(), or with release() when
   * it never reached the upstream.
   */
  tryAcquire(): { allowed: true; ticket: number } | { allowed: false; retryAfterMs: number } {
    if (this.state === "closed") return { allowed: true, ticket: 0 };
    if (this.state === "open") {
      const left = this.openedAt + this.currentOpenMs - this.now();
      if (left > 0) return { allowed: false, retryAfterMs: left };
      this.transition("half-open");
    }
    if (this.trial !== 0 && this.now() - this.trialStartedAt < this.options.trialTimeoutMs) return { allowed: false, retryAfterMs: Math.min(this.currentOpenMs, 1000) };
    this.trial = ++this.tickets;
    this.trialStartedAt = this.now();
    return { allowed: true, ticket: this.trial };
  }

  success(ticket: number): void {
    if (ticket !== 0 && ticket === this.trial) this.trial = 0;
    this.failures = 0;
    if (this.state !== "closed") {
      this.currentOpenMs = this.options.openMs;
      this.transition("closed");
    }
  }

  failure(ticket: number): void {
    const trial = ticket !== 0 && ticket === this.trial;
    if (trial) this.trial = 0;
    this.failures += 1;
    if (this.state === "half-open" && trial) {
      this.currentOpenMs = Math.min(this.currentOpenMs * 2, this.options.maxOpenMs);
      this.open();
    } else if (this.state === "closed" && this.failures >= this.options.failureThreshold) {
      this.open();
    }
  }

  /** A trial that ended before reaching the upstream (the client went away): let another one try. */
  release(ticket: number): void {
    if (ticket !== 0 && ticket === this.trial) this.trial = 0;
  }

  private open(): void {
    this.openedAt = this.now();
    this.transition("open");
  }

  private transition(state: CircuitState): void {
    this.state = state;
    this.options.onChange?.(state, { failures: this.failures, openMs: this.currentOpenMs });
  }
}
