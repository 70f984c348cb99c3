import underPressure from "@fastify/under-pressure";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Socket } from "node:net";
import type { GerbangConfig } from "../config/schema.ts";
import { GerbangError } from "../errors/catalogue.ts";
import { whenRequestEnds } from "./whenRequestEnds.ts";
import type { BodyBudget } from "./requestBody.ts";

type ServerConfig = GerbangConfig["server"];

/** Cheap answers that must keep working under pressure: liveness, and the keys upstreams verify admitted requests with. */
const EXEMPT = new Set(["/healthz", "/.well-known/jwks.json"]);

const PRESSURE_REASONS: Record<string, string> = {
  eventLoopDelay: "EVENT_LOOP_DELAY",
  eventLoopUtilization: "EVENT_LOOP_UTILIZATION",
  heapUsedBytes: "HEAP",
  rssBytes: "RSS",
};

/**
 * Sheds load with 503 OVERLOADED instead of falling over: under-pressure watches the event loop and
 * memory; the gateway itself bounds open connections and the body bytes buffered at once. /healthz
 * and the JWKS stay answerable (the process is alive; a load balancer takes it out through /readyz).
 */
export class LoadShedding {
  private openConnections = 0;
  private readonly excess = new WeakSet<Socket>();
  private bufferedBytes = 0;
  /** The same count per client address; an address leaves the map when it holds nothing. */
  private readonly bufferedByAddress = new Map<string, number>();

  private readonly config: ServerConfig;
  private readonly writeRefusal: (socket: Socket) => void;

  constructor(
    config: ServerConfig,
    writeRefusal: (socket: Socket) => void,
  ) {
    this.config = config;
    this.writeRefusal = writeRefusal;
  }

  async register(app: FastifyInstance): Promise<void> {
    const { overload } = this.config;
    const retryAfter = String(overload.retryAfterSec);
    await app.register(underPressure, {
      maxEventLoopDelay: overload.maxEventLoopDelayMs,
      maxEventLoopUtilization: overload.maxEventLoopUtilization,
      maxHeapUsedBytes: overload.maxHeapUsedBytes,
      maxRssBytes: overload.maxRssBytes,
      retryAfter: overload.retryAfterSec,
      // A rejected promise reaches the error handler, which renders the catalogue's JSON.
      pressureHandler: (request, _reply, type) =>
        EXEMPT.has(request.url) ? undefined : Promise.reject(new GerbangError("OVERLOADED", { reason: PRESSURE_REASONS[type] ?? "PRESSURE", headers: { "retry-after": retryAfter } })),
    });

    // Prepended: the refusal is written before Node's HTTP parser sees a byte of the connection.
    app.server.prependListener("connection", (socket: Socket) => {
      this.openConnections += 1;
      socket.once("close", () => (this.openConnections -= 1));
      if (this.openConnections <= this.config.maxConnections) return;
      this.excess.add(socket);
      this.writeRefusal(socket);
      socket.end();
      // Lingers briefly so the client reads the 503 rather than a reset.
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  /** onRequest: a request that arrived on a connection over the limit is refused, never forwarded. */
  checkConnection(request: FastifyRequest): void {
    if (this.excess.has(request.raw.socket)) throw this.overloaded("CONNECTIONS");
  }

  /**
   * preParsing, for a body read whole: reserves its bytes against the shared budgets, released when
   * the request ends. A chunked body has no declared size and reserves the whole limit.
   */
  reserveBody(request: FastifyRequest, reply: FastifyReply, limit: number): void {
    const declared = request.headers["content-length"];
    const chunked = request.headers["transfer-encoding"] !== undefined;
    const bytes = chunked ? limit : declared === undefined ? 0 : Math.min(Number(declared) || 0, limit);
    if (bytes === 0) return;
    const address = request.ip;
    this.charge(address, bytes);
    whenRequestEnds(request, reply, () => this.release(address, bytes));
  }

  /** For a streamed body: each part is charged from its arrival until the upstream's connection took it. */
  streamBudget(request: FastifyRequest): BodyBudget {
    const address = request.ip;
    return { charge: (bytes) => this.charge(address, bytes), release: (bytes) => this.release(address, bytes) };
  }

  private charge(address: string, bytes: number): void {
    if (this.bufferedBytes + bytes > this.config.maxInFlightBodyBytes) throw this.overloaded("BODY_BUDGET");
    const held = this.bufferedByAddress.get(address) ?? 0;
    if (held + bytes > this.config.maxInFlightBodyBytesPerAddress) throw this.overloaded("BODY_BUDGET_ADDRESS");
    this.bufferedBytes += bytes;
    this.bufferedByAddress.set(address, held + bytes);
  }

  private release(address: string, bytes: number): void {
    this.bufferedBytes -= bytes;
    const left = (this.bufferedByAddress.get(address) ?? 0) - bytes;
    if (left > 0) this.bufferedByAddress.set(address, left);
    else this.bufferedByAddress.delete(address);
  }

  private overloaded(reason: string): GerbangError {
    return new GerbangError("OVERLOADED", { reason, headers: { "retry-after": String(this.config.overload.retryAfterSec), connection: "close" } });
  }
}
