import type { MailMessage, MailSender } from "./mailSender.ts";

export interface MailQueueOptions {
  /** Mails waiting at most; one more drops the oldest (logged). */
  maxQueued?: number;
  /** Attempts per mail, with 1 s, 2 s, … between them. */
  attempts?: number;
  log: (level: "warn" | "error", msg: string, detail: { kind: string; attempt?: number }) => void;
}

/**
 * Mail handed off instead of sent inline: a request that sends a mail (an existing account's reset,
 * a new account's verification) must not take measurably longer than one that sends none, or the
 * answer time tells who has an account. One mail at a time, retried, bounded; never logs the
 * recipient's token or link.
 */
export class MailQueue implements MailSender {
  private readonly queue: MailMessage[] = [];
  private running: Promise<void> | null = null;
  private readonly maxQueued: number;
  private readonly attempts: number;

  private readonly inner: MailSender;
  private readonly options: MailQueueOptions;

  constructor(
    inner: MailSender,
    options: MailQueueOptions,
  ) {
    this.inner = inner;
    this.options = options;
    this.maxQueued = options.maxQueued ?? 1000;
    this.attempts = options.attempts ?? 3;
  }

  send(message: MailMessage): Promise<void> {
    if (this.queue.length >= this.maxQueued) {
      const dropped = this.queue.shift();
      this.options.log("error", "mail queue full; the oldest mail was dropped", { kind: dropped?.kind ?? "unknown" });
    }
    this.queue.push(message);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
    return Promise.resolve();
  }

  /** Resolves once every queued mail was sent or given up on (shutdown). */
  async flush(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private async drain(): Promise<void> {
    for (let message = this.queue.shift(); message !== undefined; message = this.queue.shift()) {
      for (let attempt = 1; attempt <= this.attempts; attempt++) {
        try {
          await this.inner.send(message);
          break;
        } catch {
          const last = attempt === this.attempts;
          this.options.log(last ? "error" : "warn", last ? "mail not sent; giving up" : "mail not sent; retrying", { kind: message.kind, attempt });
          if (!last) await new Promise((r) => setTimeout(r, 1000 * attempt));
        }
      }
    }
  }
}
