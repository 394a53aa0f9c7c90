/**
 * npm run bench:pages [-- --runs 50]
 * Time to first byte of the catalog, the approvals inbox and the history pages in the
 * production build, for a signed-in person (a database session, as after sign-in).
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";

const { values } = parseArgs({ options: { runs: { type: "string", default: "50" } } });
const RUNS = Number(values.runs);
const portal = await startBenchPortal();
const { db, disconnectDb } = await import("../lib/db");
const engine = await import("../lib/approvals/engine");

// Some history to show: a few hundred requests, half approved.
const alice = await benchUser("alice@bench.example.com", ["engineering"]);
const dave = await benchUser("dave@bench.example.com", ["platform-admins"]);
for (let i = 0; i < 300; i++) {
  const r = await engine.createRequest(alice, "temporary-access", {
    targetId: "payments-api-production",
    role: "read",
    durationMinutes: 60,
    justification: `bench page data ${i}`,
  });
  if (i % 2) await engine.decide(dave, { requestId: r.id, decision: "approve", comment: "ok" });
}
const sessionToken = randomBytes(32).toString("hex");
await db.session.create({ data: { sessionToken, userId: dave.id, expires: new Date(Date.now() + 3_600_000) } });
const cookie = `next-auth.session-token=${sessionToken}`;

const figures: Record<string, { p50Ms: number; p95Ms: number }> = {};
console.log(`[bench] ${RUNS} loads per page (after 5 warm-ups) as an admin, against ${portal.url} (production build)\n`);
for (const path of ["/catalog", "/approvals", "/history"]) {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 5; i++) {
    const t0 = performance.now();
    const response = await fetch(`${portal.url}${path}`, { headers: { cookie }, redirect: "manual" });
    const reader = response.body!.getReader();
    await reader.read(); // first byte
    const ttfb = performance.now() - t0;
    while (!(await reader.read()).done);
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
    if (i >= 5) times.push(ttfb);
  }
  times.sort((a, b) => a - b);
  figures[path] = { p50Ms: +percentile(times, 50).toFixed(1), p95Ms: +percentile(times, 95).toFixed(1) };
  console.log(`${path.padEnd(12)} time to first byte  p50 ${figures[path]!.p50Ms} ms   p95 ${figures[path]!.p95Ms} ms`);
}
saveResults("pages", { runs: RUNS, ttfb: figures });
await disconnectDb();
await portal.stop();
