/**
 * npm run bench:pages [-- --runs 50]   (or LATCHKEY_BENCH_RUNS=50)
 * Time to first byte of the catalog, the approvals inbox and the history pages in the
 * production build, for a signed-in person (a database session, as after sign-in), each as
 * a ratio to the time to first byte of a static file of the same build in the same run.
 *
 * The floor is /manifest.webmanifest, a file of public/ (593 bytes). Every page of this build
 * renders per request (the root layout reads the request for its Content-Security-Policy
 * nonce), so there is no prerendered page to compare with, and adding one would need a second
 * root layout only for the benchmark. The static file takes the same way in as a page: the
 * same server process, the same middleware (its matcher covers public files), the same
 * router; it leaves out what a page adds, the session lookup, the page's queries and React's
 * rendering. Files under /_next/static would skip the middleware, so they are not the floor.
 * The floor and the pages are loaded in turn, round after round, so a busy moment on the
 * machine falls on all of them alike.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { benchNumber, loadAverage, ratio } from "./support/bench-figures";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";

const { values } = parseArgs({ options: { runs: { type: "string" } } });
const RUNS = benchNumber(values.runs, "LATCHKEY_BENCH_RUNS", 50);
const WARM_UPS = 5;
const FLOOR = "/manifest.webmanifest";
const PAGES = ["/catalog", "/approvals", "/history"];
const loadAtStart = loadAverage();
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

/** Milliseconds to the first byte of the body; the rest is read before the next call. */
async function timeToFirstByte(path: string): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(`${portal.url}${path}`, { headers: { cookie }, redirect: "manual" });
  const reader = response.body!.getReader();
  await reader.read();
  const ttfb = performance.now() - t0;
  while (!(await reader.read()).done);
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
  return ttfb;
}

// The floor is only the floor while it takes the pages' way in: the middleware's header shows it did.
const floorAnswer = await fetch(`${portal.url}${FLOOR}`);
await floorAnswer.arrayBuffer();
if (floorAnswer.status !== 200 || !floorAnswer.headers.get("content-security-policy"))
  throw new Error(`${FLOOR} answered ${floorAnswer.status} without the middleware's Content-Security-Policy: it is no longer a floor for the pages`);

console.log(
  `[bench] ${RUNS} loads of each page and of the static floor ${FLOOR} in turn (after ${WARM_UPS} warm-ups) as an admin, against ${portal.url} (production build)\n`,
);
const times = new Map([FLOOR, ...PAGES].map((path) => [path, [] as number[]]));
for (let round = 0; round < RUNS + WARM_UPS; round++) {
  for (const [path, list] of times) {
    const ttfb = await timeToFirstByte(path);
    if (round >= WARM_UPS) list.push(ttfb);
  }
}
const summary = (list: number[]) => {
  list.sort((a, b) => a - b);
  return { p50Ms: +percentile(list, 50).toFixed(1), p95Ms: +percentile(list, 95).toFixed(1) };
};
const floor = summary(times.get(FLOOR)!);
const figures: Record<string, { p50Ms: number; p95Ms: number }> = {};
const ratios: Record<string, { p50OverFloorP50: number | null; p95OverFloorP95: number | null }> = {};
console.log(`${"static floor".padEnd(12)} time to first byte  p50 ${floor.p50Ms} ms   p95 ${floor.p95Ms} ms   (${FLOOR})`);
for (const path of PAGES) {
  const page = (figures[path] = summary(times.get(path)!));
  ratios[path] = { p50OverFloorP50: ratio(page.p50Ms, floor.p50Ms, 2), p95OverFloorP95: ratio(page.p95Ms, floor.p95Ms, 2) };
  console.log(
    `${path.padEnd(12)} time to first byte  p50 ${page.p50Ms} ms   p95 ${page.p95Ms} ms   ÷ floor: p50 ${ratios[path]!.p50OverFloorP50}, p95 ${ratios[path]!.p95OverFloorP95}`,
  );
}
saveResults("pages", {
  runs: RUNS,
  floor: { path: FLOOR, kind: "static file of public/, through the middleware", ...floor },
  ttfb: figures,
  ratios,
  loadAverage: { atStart: loadAtStart, atEnd: loadAverage() },
});
await disconnectDb();
await portal.stop();
