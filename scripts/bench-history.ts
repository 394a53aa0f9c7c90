/**
 * npm run bench:history [-- --runs 100]
 * Runs the auditor's common history queries against the large data set (npm run seed:large
 * first) through the same code the pages use, and compares each with what the database
 * itself needs for it, so that the figures mean the same on a quiet machine and a busy one:
 * - per query: p50/p95 through the code (the queries taking turns, one run each per round), and p95 ÷ PostgreSQL's own execution time for the
 *   exact statements the code sent (captured at the pg driver, replayed under
 *   EXPLAIN (ANALYZE, FORMAT JSON) with the same parameters);
 * - across queries: the slowest query's p95 ÷ the median query's p95 (target ≤ 3);
 * - export: rows/s of a CSV export of about 100,000 events ÷ rows/s of PostgreSQL's
 *   `COPY (same query) TO STDOUT (FORMAT csv)` read by psql (target ≥ 0.5), and peak memory;
 *   both measured alike: one warm-up, then the median of three runs, the reader counting only
 *   bytes (COPY's time less psql's own start), the rows counted by the database and checked
 *   against the warm-up export's;
 * then the EXPLAIN ANALYZE of the slowest query. Writes bench/history.json.
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import pg from "pg";
import { saveResults } from "./support/bench-portal";
import { largeDatabase } from "./support/large-database";

const { values } = parseArgs({ options: { runs: { type: "string", default: "100" } } });
const RUNS = Number(values.runs);

const { url, stop } = await largeDatabase();
const { db, disconnectDb } = await import("../lib/db");
const { searchHistory } = await import("../lib/history/search");
const { exportQuery } = await import("../lib/history/rows");
const { historyFiltersSchema, filtersOf } = await import("../lib/history/filters");
const { exportStream } = await import("../lib/history/export");

/** Every statement the code sends while `capturing` is on, as the driver sends it. */
type Statement = { text: string; values: unknown[] };
let capturing: Statement[] | null = null;
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const [first, second] = args;
  if (capturing) {
    if (typeof first === "string") capturing.push({ text: first, values: Array.isArray(second) ? second : [] });
    else if (first && typeof first === "object" && "text" in first) {
      const config = first as { text: string; values?: unknown[] };
      capturing.push({ text: config.text, values: config.values ?? [] });
    }
  }
  return query.apply(this, args);
} as typeof pg.Client.prototype.query;

/** A connection of the bench's own, for EXPLAIN: nothing it sends is captured. */
const explainer = new pg.Client({ connectionString: url });
await explainer.connect();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** PostgreSQL's own planning and execution time for a statement: the median of five EXPLAIN ANALYZE runs. */
async function databaseTime(s: Statement): Promise<{ planningMs: number; executionMs: number }> {
  const planning: number[] = [];
  const execution: number[] = [];
  for (let i = 0; i < 5; i++) {
    capturing = null;
    const { rows } = await explainer.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${s.text}`, s.values);
    const [plan] = rows[0]["QUERY PLAN"] as { "Planning Time": number; "Execution Time": number }[];
    planning.push(plan!["Planning Time"]);
    execution.push(plan!["Execution Time"]);
  }
  return { planningMs: median(planning), executionMs: median(execution) };
}

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
  "text + dates": { q: "reconciliation", from: day(-90), to: day(-60) },
  "rare text": { q: "Kraken" },
  "last page, all": { end: "last" },
  "last page, actor": { actor: someone, end: "last" },
  "last page, text": { q: "refund", end: "last" },
  "oldest first, target": { sort: "oldest", target: "admin-console" },
};

console.log(
  `History benchmark: ${events.toLocaleString("en")} audit events, ${requests.toLocaleString("en")} requests, ${RUNS} runs per query (after 3 warm-ups), page of 50.\n`,
);
console.log(
  `${"query".padEnd(24)} ${"rows".padStart(4)} ${"p50 ms".padStart(7)} ${"p95 ms".padStart(7)} ${"db ms".padStart(7)} ${"plan ms".padStart(7)} ${"stmts".padStart(5)} ${"p95÷db".padStart(7)}`,
);
type Result = {
  name: string;
  raw: Record<string, string>;
  rows: number;
  p50: number;
  p95: number;
  statements: Statement[];
  executionMs: number;
  planningMs: number;
};
const results: Result[] = [];
// The queries take turns, one run each per round, so that a moment of noise on the machine (a
// checkpoint, another process) falls on all of them alike, not on whichever ran then: the
// slowest ÷ median ratio compares the queries, not the moments they ran at.
const queries = Object.entries(QUERIES).map(([name, raw]) => ({ name, raw, parsed: historyFiltersSchema.parse(raw), rows: 0, times: [] as number[] }));
for (let i = 0; i < RUNS + 3; i++) {
  for (const q of queries) {
    const t0 = performance.now();
    const page = await searchHistory(q.parsed);
    const ms = performance.now() - t0;
    q.rows = page.events.length;
    if (i >= 3) q.times.push(ms);
  }
}
for (const { name, raw, parsed, rows, times } of queries) {
  times.sort((a, b) => a - b);
  // One more run, captured: the statements a page of this query costs.
  const statements: Statement[] = [];
  capturing = statements;
  await searchHistory(parsed);
  capturing = null;
  let executionMs = 0;
  let planningMs = 0;
  for (const s of statements) {
    const t = await databaseTime(s);
    executionMs += t.executionMs;
    planningMs += t.planningMs;
  }
  const r: Result = { name, raw, rows, p50: percentile(times, 50), p95: percentile(times, 95), statements, executionMs, planningMs };
  results.push(r);
  console.log(
    `${name.padEnd(24)} ${String(rows).padStart(4)} ${r.p50.toFixed(2).padStart(7)} ${r.p95.toFixed(2).padStart(7)} ${executionMs.toFixed(3).padStart(7)} ${planningMs.toFixed(3).padStart(7)} ${String(statements.length).padStart(5)} ${(r.p95 / executionMs).toFixed(1).padStart(7)}`,
  );
}
const byP95 = [...results].sort((a, b) => a.p95 - b.p95);
const slowest = byP95.at(-1)!;
const medianP95 = median(results.map((r) => r.p95));
const slowestDb = [...results].sort((a, b) => b.executionMs - a.executionMs)[0]!;
console.log(
  `\nSlowest query's p95 ÷ median query's p95: ${slowest.p95.toFixed(2)} ÷ ${medianP95.toFixed(2)} = ${(slowest.p95 / medianP95).toFixed(2)} ("${slowest.name}"; target ≤ 3).`,
);
console.log(`Longest database execution: ${slowestDb.executionMs.toFixed(2)} ms ("${slowestDb.name}").`);

// Export: a period of about 100,000 events, streamed and discarded, as a browser would download it.
// Measured as COPY is below: one warm-up, then the median of three runs, the reader only
// counting bytes (as psql does for COPY); the rows are counted by the database, for both.
const perDay = events / 365;
const span = Math.ceil(100_000 / perDay);
const exportFilters = filtersOf(historyFiltersSchema.parse({ from: day(-span - 10), to: day(-11) }));
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const baseline = process.memoryUsage().rss;
async function exportOnce(countRows = false): Promise<{ seconds: number; bytes: number; rows: number }> {
  const started = performance.now();
  let bytes = 0;
  // Rows end with a line break outside quotes, after the two comment lines and the column names (counted only when asked: untimed).
  let lineEnds = 0;
  let quoted = false;
  const reader = exportStream("csv", exportFilters, "bench", null).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (countRows)
      for (const b of value) {
        if (lineEnds >= 3 && b === 34) quoted = !quoted;
        else if (b === 10 && !quoted) lineEnds += 1;
      }
  }
  return { seconds: (performance.now() - started) / 1000, bytes, rows: lineEnds - 3 };
}
const warmExport = await exportOnce(true);
const exportRuns = [await exportOnce(), await exportOnce(), await exportOnce()];
clearInterval(sampler);
if (exportRuns.some((r) => r.bytes !== warmExport.bytes)) throw new Error("the export's runs wrote different bytes");
const seconds = median(exportRuns.map((r) => r.seconds));
const bytes = warmExport.bytes;

/**
 * The baseline: the same rows in the same order, written by PostgreSQL itself as CSV and read
 * by psql into nothing. COPY takes no parameters, so the filters' values go in as literals.
 */
const exported = (await exportQuery(exportFilters))!;
const literal = (v: unknown) => explainer.escapeLiteral(v instanceof Date ? v.toISOString() : String(v));
const copyQuery = exported.text.replace(/\$(\d+)/g, (_, n: string) => literal(exported.values[Number(n) - 1]));
const copySql = `COPY (${copyQuery}) TO STDOUT (FORMAT csv)`;
async function psqlOnce(sql: string): Promise<{ seconds: number; bytes: number }> {
  const started = performance.now();
  let copied = 0;
  await new Promise<void>((resolve, reject) => {
    const psql = spawn("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], { stdio: ["ignore", "pipe", "inherit"] });
    // Quoted cells may hold line breaks, so rows are counted by the database below, not here.
    psql.stdout.on("data", (chunk: Buffer) => (copied += chunk.length));
    psql.on("error", reject);
    psql.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`psql exited with ${code}`))));
  });
  return { seconds: (performance.now() - started) / 1000, bytes: copied };
}
const copyOnce = () => psqlOnce(copySql);
await copyOnce();
const copyRuns = [await copyOnce(), await copyOnce(), await copyOnce()];
// psql's own start, connection and sign-in are not COPY's work: the time of a `SELECT 1` through it is taken off.
await psqlOnce("SELECT 1");
const psqlStart = median([(await psqlOnce("SELECT 1")).seconds, (await psqlOnce("SELECT 1")).seconds, (await psqlOnce("SELECT 1")).seconds]);
const copySeconds = median(copyRuns.map((r) => r.seconds)) - psqlStart;
const { rows: countRows } = await explainer.query(`SELECT count(*)::int AS n FROM (${copyQuery}) x`);
const copyRows = countRows[0].n as number;
const copyRowsPerSecond = copyRows / copySeconds;
if (warmExport.rows !== copyRows) throw new Error(`the export wrote ${warmExport.rows} rows where the database counts ${copyRows}`);
const rows = copyRows;
const rowsPerSecond = rows / seconds;
console.log(
  `\nExport (CSV, ${span} days): ${rows.toLocaleString("en")} rows, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s = ${Math.round(rowsPerSecond).toLocaleString("en")} rows/s (median of 3, after one warm-up); peak RSS ${(peak / 1e6).toFixed(0)} MB (${((peak - baseline) / 1e6).toFixed(0)} MB above the process at rest).`,
);
console.log(
  `COPY (same query) TO STDOUT through psql: ${copyRows.toLocaleString("en")} rows in ${copySeconds.toFixed(3)} s = ${Math.round(copyRowsPerSecond).toLocaleString("en")} rows/s (median of 3, after one warm-up, less psql's own ${(psqlStart * 1000).toFixed(0)} ms to start and sign in).`,
);
console.log(`Export ÷ COPY: ${(rowsPerSecond / copyRowsPerSecond).toFixed(2)} (target ≥ 0.5).`);

// The plan of the slowest query, to show which index it used.
const [main] = [...slowest.statements].sort((a, b) => b.text.length - a.text.length);
const { rows: plan } = await explainer.query(`EXPLAIN (ANALYZE, BUFFERS) ${main!.text}`, main!.values);
// Long lines (an approver's thousand request ids) are cut: the plan's shape is what matters.
const planLines = plan.map((row) => row["QUERY PLAN"] as string).map((line) => (line.length > 240 ? `${line.slice(0, 240)}…` : line));
console.log(`\nEXPLAIN ANALYZE of the slowest query ("${slowest.name}", p95 ${slowest.p95.toFixed(2)} ms), its main statement:`);
for (const line of planLines) console.log(`  ${line}`);

const round = (x: number, digits = 2) => +x.toFixed(digits);
saveResults("history", {
  events,
  requests,
  runs: RUNS,
  queries: Object.fromEntries(
    results.map((r) => [
      r.name,
      {
        p50Ms: round(r.p50),
        p95Ms: round(r.p95),
        dbExecutionMs: round(r.executionMs, 3),
        dbPlanningMs: round(r.planningMs, 3),
        statements: r.statements.length,
        p95OverDbExecution: round(r.p95 / r.executionMs, 1),
      },
    ]),
  ),
  spread: { slowest: slowest.name, slowestP95Ms: round(slowest.p95), medianP95Ms: round(medianP95), slowestOverMedianP95: round(slowest.p95 / medianP95) },
  export: {
    rows,
    seconds: round(seconds),
    rowsPerSecond: Math.round(rowsPerSecond),
    peakRssMB: Math.round(peak / 1e6),
    aboveRestMB: Math.round((peak - baseline) / 1e6),
    copyRowsPerSecond: Math.round(copyRowsPerSecond),
    copyVia: "psql",
    psqlStartMs: Math.round(psqlStart * 1000),
    exportOverCopy: round(rowsPerSecond / copyRowsPerSecond),
  },
  slowestPlan: { query: slowest.name, sql: main!.text, plan: planLines },
});

await explainer.end();
await disconnectDb();
await stop();
