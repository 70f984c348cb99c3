import type { RedisClient as Redis } from "../runtime/redisClient.ts";
import Type from "#typebox";
import Value from "#typebox/value";

/** The channel is `<redis.keyPrefix>invalidate`, `gerbang:invalidate` by default. */
const invalidationChannel = (keyPrefix: string): string => `${keyPrefix}invalidate`;

/** What every instance must apply at once: a cache entry to forget (a key, everything of one user, everything), or a policy activation. */
const MessageSchema = Type.Union([
  Type.Object({ kind: Type.Literal("key"), id: Type.String() }),
  Type.Object({ kind: Type.Literal("user"), id: Type.String() }),
  Type.Object({ kind: Type.Literal("all") }),
  // Not a cache entry: the recorded active policy version changed; every instance checks it at once.
  Type.Object({ kind: Type.Literal("policy") }),
]);
export type Invalidation = Type.Static<typeof MessageSchema>;
/** Proof that the channel carries messages end to end, not only that a socket looks open; no handler sees it. */
const HEARTBEAT = JSON.stringify({ kind: "heartbeat" });
const HEARTBEAT_MS = 1000;
/** Without a message for this long, the channel counts as lost (a half-open connection stays "ready"). */
const HEARD_WITHIN_MS = 3 * HEARTBEAT_MS;
const MAX_UNSENT = 1000;

export type InvalidationHandler = (message: Invalidation) => void;

/**
 * Redis pub/sub between gateway instances (and the CLI). A publisher applies its own message
 * locally first, so a change made here never waits for Redis. A subscriber that lost its
 * connection may have missed messages: on every reconnect it applies "all", so caches refill
 * from the database instead of trusting what they held.
 */
export class InvalidationBus {
  private readonly handlers: InvalidationHandler[] = [];
  private readonly channel: string;

  private readonly publisher: Redis | null;
  private readonly subscriber: Redis | null;
  private readonly log: (msg: string) => void;

  constructor(
    publisher: Redis | null,
    subscriber: Redis | null,
    keyPrefix: string,
    log: (msg: string) => void = () => undefined,
  ) {
    this.publisher = publisher;
    this.subscriber = subscriber;
    this.log = log;
    this.channel = invalidationChannel(keyPrefix);
  }

  private subscribed = false;
  private ready = false;
  private lastHeard = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Invalidations Redis did not take: sent again on every heartbeat until it does. */
  private unsent: Invalidation[] = [];

  /** Whether invalidations published anywhere reach this instance right now: subscribed, and heard from lately. */
  get connected(): boolean {
    return this.subscribed && this.subscriber?.status === "ready" && Date.now() - this.lastHeard <= HEARD_WITHIN_MS;
  }

  onInvalidate(handler: InvalidationHandler): void {
    this.handlers.push(handler);
  }

  start(): void {
    const sub = this.subscriber;
    if (sub === null) return;
    sub.on("message", (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return;
      }
      this.lastHeard = Date.now();
      if (Value.Check(MessageSchema, parsed)) this.apply(parsed);
    });
    // Every (re)connect may follow missed messages; the first one finds the caches empty anyway.
    sub.on("ready", () => {
      this.ready = true;
      this.log("invalidation: subscribed; caches cleared");
      this.apply({ kind: "all" });
    });
    // Queued while Redis is unreachable (the subscriber keeps an offline queue); ioredis resubscribes after reconnects.
    sub.on("close", () => {
      // Until the next "ready" (which clears every cache), messages may be missed. Logged once per loss.
      if (this.ready) this.log("invalidation: channel lost; cached credentials only within their TTL");
      this.ready = false;
    });
    // Every instance's heartbeat reaches every subscriber, its own included.
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
    void sub.subscribe(this.channel).then(
      () => {
        this.subscribed = true;
        this.subscribedAt = Date.now();
      },
      () => this.log("invalidation: subscribe failed"),
    );
  }

  /**
   * Applies locally, then tells the other instances. Returns false when they could not be told; the
   * message is then sent again with every heartbeat until Redis takes it.
   */
  async publish(message: Invalidation): Promise<boolean> {
    this.apply(message);
    if (this.publisher === null) return false;
    try {
      await this.publisher.publish(this.channel, JSON.stringify(message));
      return true;
    } catch {
      this.log("invalidation: publish failed; retrying with every heartbeat (other instances may serve the credential until their cache TTL)");
      this.unsent.push(message);
      // Too many to keep: one "all" says as much.
      if (this.unsent.length > MAX_UNSENT) this.unsent = [{ kind: "all" }];
      return false;
    }
  }

  private async beat(): Promise<void> {
    if (this.publisher === null) return;
    try {
      while (this.unsent.length > 0) {
        await this.publisher.publish(this.channel, JSON.stringify(this.unsent[0]));
        this.unsent.shift();
      }
      await this.publisher.publish(this.channel, HEARTBEAT);
      this.heartbeatsSent.push(Date.now());
      if (this.heartbeatsSent.length > 8) this.heartbeatsSent.shift();
    } catch {
      // Redis is away: the subscriber stops hearing heartbeats, and the caches fall back to their TTLs.
      return;
    }
    await this.healSubscription();
  }

  /** When our heartbeats were published but none came back (the instance's own included). */
  private heartbeatsSent: number[] = [];
  private subscribedAt = 0;
  private healing = false;

  /**
   * Our own heartbeats go out but none come back although the subscriber says "ready": the
   * subscription is not delivering (seen intermittently right after start). Subscribe again and
   * start the caches over, as after a reconnect, instead of serving revoked credentials until a TTL.
   */
  private async healSubscription(): Promise<void> {
    const sub = this.subscriber;
    const now = Date.now();
    const since = Math.max(this.lastHeard, this.subscribedAt);
    const unheard = this.heartbeatsSent.filter((at) => at > since && now - at > HEARD_WITHIN_MS);
    if (sub === null || !this.subscribed || this.healing || sub.status !== "ready" || unheard.length === 0) return;
    this.healing = true;
    try {
      await sub.unsubscribe(this.channel).catch(() => undefined);
      await sub.subscribe(this.channel);
      this.subscribedAt = Date.now();
      this.heartbeatsSent = [];
      this.log("invalidation: our own heartbeats stopped arriving; subscribed again and cleared the caches");
      this.apply({ kind: "all" });
    } catch {
      // the next heartbeat tries again
    } finally {
      this.healing = false;
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private apply(message: Invalidation): void {
    for (const handler of this.handlers) handler(message);
  }
}
