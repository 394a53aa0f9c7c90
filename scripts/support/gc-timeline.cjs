/**
 * Preloaded into the portal's processes by bench:approvals (NODE_OPTIONS): in the web server
 * only, it appends one JSON line for each major (mark-compact) garbage collection to the file
 * LATCHKEY_BENCH_GC_LOG names, with when its pause ended (ms since the epoch) and how long the
 * pause was. The web server's metrics count collections by kind but not when they happened,
 * and the bench matches these times against the paced phase's slow episodes
 * (scripts/support/bench-figures.ts, withCollections). A major collection comes about once in
 * 15 to 30 s under the bench's load, so writing each one synchronously costs nothing measurable.
 */
const file = process.env.LATCHKEY_BENCH_GC_LOG;
if (file && process.argv.some((arg) => arg.endsWith("server.js"))) {
  const { PerformanceObserver, constants, performance } = require("node:perf_hooks");
  const { appendFileSync } = require("node:fs");
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      const endedAt = performance.timeOrigin + entry.startTime + entry.duration;
      appendFileSync(file, `${JSON.stringify({ endedAt: Math.round(endedAt), pauseMs: +entry.duration.toFixed(1) })}\n`);
    }
  }).observe({ entryTypes: ["gc"] });
}
