/**
 * OpenTelemetry tracing, switched on by the standard OTEL_* variables and off otherwise:
 * OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP over HTTP),
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_SDK_DISABLED.
 * The SDK reads them itself; this file only decides whether to start it. Once a tracer
 * provider is registered, Next.js's own spans (each request, route and render) go to it.
 */
export function tracingEnabled(source: Record<string, string | undefined>): boolean {
  if (source.OTEL_SDK_DISABLED === "true" || source.OTEL_TRACES_EXPORTER === "none") return false;
  return Boolean(source.OTEL_EXPORTER_OTLP_ENDPOINT || source.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || source.OTEL_TRACES_EXPORTER === "otlp");
}

/** Starts tracing when the OTEL_* variables ask for it; resolves to a function that flushes and stops it. */
export async function startTracing(defaultServiceName: string): Promise<() => Promise<void>> {
  if (!tracingEnabled(process.env)) return async () => undefined;
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, resourceFromAttributes }] =
    await Promise.all([import("@opentelemetry/sdk-trace-node"), import("@opentelemetry/exporter-trace-otlp-http"), import("@opentelemetry/resources")]);
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": defaultServiceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  provider.register();
  return () => provider.shutdown();
}
