/**
 * npm run bench:history [-- --runs 30]
 * Runs the auditor's common history queries against the large data set (npm run seed:large
 * first) through the same code the pages use, and prints p50/p95 per query; then streams an
 * export of about 100,000 rows and prints rows per second and peak memory; then EXPLAIN
 * ANALYZE of the slowest query. Targets on a 2-core machine: p95 < 50 ms per query, export
 * > 50,000 rows/s in < 200 MB.
 */
import { parseArgs } from "node:util";
import { saveResults } from "./support/bench-portal";
import { largeDatabase } from "./support/large-database";

const { values } = parseArgs({ options: { runs: { type: "string", default: "30" } } });
const RUNS = Number(values.runs);

const { stop } = await largeDatabase();
const { db, disconnectDb } = await import("../lib/db");
const { searchHistory, historyWhere, HISTORY_COLUMNS } = await import("../lib/audit/history");
const { historyFiltersSchema, filtersOf } = await import("../lib/audit/history-filters");
const { exportStream } = await import("../lib/audit/export");
const { Prisma } = await import("@prisma/client");

const events = await db.auditEvent.count();
if (events < 1000) {
  console.error("The large data set is missing: run npm run seed:large first.");
  process.exit(2);
}
const requests = await db.accessRequest.count();
const [newest] = await db.auditEvent.findMany({ orderBy: { id: "desc" }, take: 1, select: { occurredAt: true } });
const day = (offsetDays: number) => new Date(newest!.occurredAt.getTime() + offsetDays * 86_400_000).toISOString().slice(0, 10);
const someone = (await db.auditEvent.findFirstOrThrow({ where: { actorType: "human", action: "request.created" }, select: { actorEmail: true } })).actorEmail!;
const approver = (await db.approval.findFirstOrThrow({ select: { approver: { select: { email: true } } } })).approver.email;

const QUERIES: Record<string, Record<string, string>> = {
  "all, newest page": {},
  actor: { actor: someone },
  approver: { approver },
  workflow: { workflow: "open-route" },
  target: { target: "ledger-db-production" },
  environment: { environment: "staging" },
  status: { status: "revoked" },
  event: { action: "request.rejected" },
  "date range (a month)": { from: day(-200), to: day(-170) },
  "text search": { q: "settlement logs" },
  combination: { target: "payments-api-production", status: "active", from: day(-120), to: day(-30) },
  "combination + text": { environment: "production", q: "refund", action: "request.created" },
  "last page, all": { end: "last" },
  "last page, actor": { actor: someone, end: "last" },
  "oldest first, target": { sort: "oldest", target: "admin-console" },
};

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
console.log(
  `History benchmark: ${events.toLocaleString("en")} audit events, ${requests.toLocaleString("en")} requests, ${RUNS} runs per query (after 3 warm-ups), page of 50.\n`,
);
console.log(`${"query".padEnd(26)} ${"rows".padStart(5)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)}`);
const results: { name: string; p50: number; p95: number; raw: Record<string, string> }[] = [];
for (const [name, raw] of Object.entries(QUERIES)) {
  const query = historyFiltersSchema.parse(raw);
  let rows = 0;
  const times: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const t0 = performance.now();
    const page = await searchHistory(query);
    const ms = performance.now() - t0;
    rows = page.events.length;
    if (i >= 3) times.push(ms);
  }
  times.sort((a, b) => a - b);
  const p95 = percentile(times, 95);
  results.push({ name, p50: +percentile(times, 50).toFixed(1), p95: +p95.toFixed(1), raw });
  console.log(
    `${name.padEnd(26)} ${String(rows).padStart(5)} ${percentile(times, 50).toFixed(1).padStart(8)} ${p95.toFixed(1).padStart(8)}${p95 > 50 ? "  over target" : ""}`,
  );
}

// Export: a period of about 100,000 events, streamed and discarded, as a browser would download it.
const perDay = events / 365;
const span = Math.ceil(100_000 / perDay);
const exportFilters = filtersOf(historyFiltersSchema.parse({ from: day(-span - 10), to: day(-11) }));
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const baseline = process.memoryUsage().rss;
const t0 = performance.now();
let bytes = 0;
let lines = 0;
const reader = exportStream("csv", exportFilters, "bench", null).getReader();
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  bytes += value.byteLength;
  for (const b of value) if (b === 10) lines += 1;
}
const seconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
const rows = lines - 3;
console.log(
  `\nExport (CSV, ${span} days): ${rows.toLocaleString("en")} rows, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds).toLocaleString("en")} rows/s; peak RSS ${(peak / 1e6).toFixed(0)} MB (${((peak - baseline) / 1e6).toFixed(0)} MB above the process at rest).`,
);

saveResults("history", {
  events,
  requests,
  runs: RUNS,
  queries: Object.fromEntries(results.map((r) => [r.name, { p50Ms: r.p50, p95Ms: r.p95 }])),
  export: {
    rows,
    seconds: +seconds.toFixed(2),
    rowsPerSecond: Math.round(rows / seconds),
    peakRssMB: Math.round(peak / 1e6),
    aboveRestMB: Math.round((peak - baseline) / 1e6),
  },
});

// The plan of the slowest query, to show which index it used.
const slowest = results.sort((a, b) => b.p95 - a.p95)[0]!;
const where = await historyWhere(filtersOf(historyFiltersSchema.parse(slowest.raw)));
const plan = await db.$queryRaw<
  { "QUERY PLAN": string }[]
>`EXPLAIN (ANALYZE, BUFFERS) SELECT ${HISTORY_COLUMNS} FROM "AuditEvent" e ${where ?? Prisma.empty} ORDER BY e.id DESC LIMIT 51`;
console.log(`\nEXPLAIN ANALYZE of the slowest query ("${slowest.name}", p95 ${slowest.p95.toFixed(1)} ms):`);
for (const row of plan) console.log(`  ${row["QUERY PLAN"]}`);

await disconnectDb();
await stop();
