import type { Tracer } from "@opentelemetry/api";

export interface OtlpTracer {
  tracer: Tracer;
  /** Sends what is batched, then stops. */
  shutdown(): Promise<void>;
}

/**
 * An OpenTelemetry SDK tracer exporting to an OTLP/HTTP endpoint, loaded only when configured (the
 * SDK is not on the path of a gateway that does not trace). Not registered globally: each gateway
 * in a process has its own.
 */
export async function startOtlpTracer(options: { url: string; serviceName: string; instance: string }): Promise<OtlpTracer> {
  const [{ TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName, "service.instance.id": options.instance }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: options.url }), scheduledDelayMillis: 1000 })],
  });
  return { tracer: provider.getTracer("gerbang"), shutdown: () => provider.shutdown() };
}
