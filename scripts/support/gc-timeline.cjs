/**
 * Preloaded into the portal's processes by bench:approvals (NODE_OPTIONS): in the web server
 * only, it appends one JSON line to the file LATCHKEY_BENCH_GC_LOG names for each major
 * (mark-compact) garbage collection and each other one that paused it LONG_MS or more, with its
 * kind, when its pause ended (ms since the epoch) and how long the pause was. The web server's
 * metrics count collections by kind but not when they happened, and the bench matches these
 * times against the paced phase's slow episodes (scripts/support/bench-figures.ts,
 * withCollections). LONG_MS is 50: under that load a minor collection pauses the server 20 to
 * 30 ms about twice a second, too often to say anything beside an episode, while the rare ones
 * of 50 to 95 ms stop every call in flight long enough to make one. That is a line every few
 * seconds at most, so writing each synchronously costs nothing measurable.
 */
const file = process.env.LATCHKEY_BENCH_GC_LOG;
if (file && process.argv.some((arg) => arg.endsWith("server.js"))) {
  const { PerformanceObserver, constants, performance } = require("node:perf_hooks");
  const { appendFileSync } = require("node:fs");
  const LONG_MS = 50;
  const KINDS = {
    [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
    [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
  };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = KINDS[entry.detail?.kind] ?? "other";
      if (kind !== "major" && entry.duration < LONG_MS) continue;
      const endedAt = performance.timeOrigin + entry.startTime + entry.duration;
      appendFileSync(file, `${JSON.stringify({ endedAt: Math.round(endedAt), kind, pauseMs: +entry.duration.toFixed(1) })}\n`);
    }
  }).observe({ entryTypes: ["gc"] });
}
