import { BlockList, isIP } from "node:net";
import { isSpanContextValid, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import { boundedTracestate, newTraceIds, parseTraceparent, type TraceContext } from "./traceContext.ts";

export interface RequestTracingOptions {
  /** Addresses or CIDRs of callers whose traceparent and tracestate are continued; others start a trace. */
  trustFrom: readonly string[];
  /** The OTLP tracer when configured; otherwise the global API's (a no-op unless an SDK was registered). */
  tracer?: Tracer;
}

export interface TraceOutcome {
  status: number;
  endpoint?: string | undefined;
  decision?: string | undefined;
  reason?: string | undefined;
  upstream?: string | undefined;
}

function trustList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = "", bits] = entry.split("/");
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (isIP(address) === 0) throw new Error(`tracing.trustIncomingFrom: ${entry} is not an address or CIDR`);
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

/**
 * Each request's place in a W3C trace: the caller's trace continued when the caller is trusted
 * (its traceparent and tracestate), a new one otherwise; one server span through @opentelemetry/api
 * whose id is the parent the upstream sees in its traceparent.
 */
export class RequestTracing {
  private readonly trusted: BlockList;
  /** Null when no SDK is there to record spans: then no span objects are made per request. */
  private readonly tracer: Tracer | null;
  private readonly spans = new WeakMap<object, Span>();

  constructor(options: RequestTracingOptions) {
    this.trusted = trustList(options.trustFrom);
    this.tracer = options.tracer ?? (globalSdkRegistered() ? trace.getTracer("gerbang") : null);
  }

  private trusts(address: string | undefined): boolean {
    if (address === undefined) return false;
    const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
    return this.trusted.check(plain, isIP(plain) === 6 ? "ipv6" : "ipv4");
  }

  /** `key` is the request (the span is kept by it); `socketAddress` the direct peer, never X-Forwarded-For. */
  start(key: object, headers: Record<string, string | string[] | undefined>, socketAddress: string | undefined, name: string): TraceContext {
    const parent = this.trusts(socketAddress) ? parseTraceparent(headers.traceparent) : null;
    const tracestate = parent === null ? null : boundedTracestate(headers.tracestate);
    if (this.tracer === null) return { ...newTraceIds(parent?.traceId ?? null), flags: parent?.flags ?? "01", tracestate };
    const context = parent === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.parentId, traceFlags: Number.parseInt(parent.flags, 16), isRemote: true });
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER }, context);
    const made = span.spanContext();
    // A no-op tracer hands back the parent's context (or an invalid one): then the ids are ours.
    if (isSpanContextValid(made) && made.spanId !== parent?.parentId) {
      this.spans.set(key, span);
      return { traceId: made.traceId, spanId: made.spanId, flags: made.traceFlags.toString(16).padStart(2, "0"), tracestate };
    }
    return { ...newTraceIds(parent?.traceId ?? null), flags: parent?.flags ?? "01", tracestate };
  }

  end(key: object, outcome: TraceOutcome): void {
    const span = this.spans.get(key);
    if (span === undefined) return;
    this.spans.delete(key);
    span.setAttribute("http.response.status_code", outcome.status);
    if (outcome.endpoint !== undefined) span.setAttribute("gerbang.endpoint", outcome.endpoint);
    if (outcome.decision !== undefined) span.setAttribute("gerbang.decision", outcome.decision);
    if (outcome.reason !== undefined) span.setAttribute("gerbang.reason", outcome.reason);
    if (outcome.upstream !== undefined) span.setAttribute("gerbang.upstream", outcome.upstream);
    if (outcome.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }
}

/** Whether an SDK was registered with the API's global tracer provider (`node --import` instrumentation). */
function globalSdkRegistered(): boolean {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  return delegate.constructor.name !== "NoopTracerProvider";
}
