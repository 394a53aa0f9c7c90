/**
 * Runs once when the Next.js server starts. The Node.js part checks configuration and
 * policy, so a mistake stops the server with a clear message instead of failing later,
 * and starts OpenTelemetry tracing when the standard OTEL_* variables ask for it.
 */
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { checkEncryptionKeyAtStart } = await import("./lib/startup-checks");
    await checkEncryptionKeyAtStart();
    const { startTracing } = await import("./lib/observability/tracing");
    await startTracing("latchkey-web");
  }
}
