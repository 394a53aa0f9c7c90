/**
 * npm run bench:approvals [-- --seconds 60 --users 50]   (or LATCHKEY_BENCH_SECONDS=60)
 * Against the production build over HTTP: first 1,000 approvals one at a time (after 50 not
 * counted, while the routes' code loads and compiles); then half the
 * users request access through the API and half approve what is waiting, flat out for the
 * given time, then for half as long paced to three quarters of the rate reached (each
 * person pausing between calls), which shows the latency below saturation. Prints requests and approvals per
 * second, p50/p95/p99 from approval to issued credential (the approve call returns once
 * the credential is signed and stored), errors and double executions (both must be 0).
 * Two baselines of the same run, to which the results are ratios: the framework's floor
 * (the same users each making two calls of /api/health, one `SELECT 1`, in a loop: the most
 * request-and-approve pairs a second the web framework and this client could carry here if
 * each did nothing else), measured in two halves, just before and just after the flat-out phase,
 * the faster of which counts (floorHalf), and PostgreSQL's own write rate on the same server (pgbench's
 * TPC-B-like script, when pgbench is installed). The tail is the paced p99 over the one-at-a-time p99,
 * printed beside the floor's own (floorAlone, floorPaced: its calls one pair at a time, then paced
 * as the approvals are, for as long, to three quarters of its flat-out rate, on a quiet database:
 * what queueing alone makes of the tail), and both again at half the flat-out rate, which shows
 * how the tail grows with the load, with the share of its flat-out rate each paced run reached;
 * the paced approvals at or above that p99 are also printed by episode (episodes()), which tells
 * a tail made by a few moments when everything stalled together from one made by queueing, each
 * with the web server's garbage collection (a major one, or another that paused it 50 ms or
 * more) that ended within the second before it or during it, if one did
 * (scripts/support/gc-timeline.cjs records when each ended), and with PostgreSQL's autovacuum work
 * that ran during it or ended in the second before (its workers seen every 50 ms,
 * scripts/support/pg-maintenance.ts; each phase also prints all it saw).
 * Each phase starts once the portal has caught up with what the one before left it (audit
 * events to chain, jobs due), and the time that took after the flat-out phase is printed.
 * Each phase also prints the CPU time that Next.js's server, the worker, PostgreSQL (when
 * embedded) and this client spent per approval, or per pair of the floor's calls, and the web
 * server's garbage collections by kind with their pause time per approval (its own metrics).
 * Flat out, and for the floor, it prints the time the web server's main thread (the one that
 * runs every request's JavaScript, the limit of both) spent on a CPU per approval or pair, and
 * how much of the phase it spent on a CPU and waiting for one: the floor pair's time over the
 * approval's is the two costs' ratio on that thread, which the other processes on the same
 * cores do not move, where the throughput ratio moves with what they take from it.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { existsSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { nodeOptionsWith } from "../lib/http/preloads";
import { benchNumber, collectionsIn, episodes, judge, loadAverage, ratio, withCollections, type Collection } from "./support/bench-figures";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";
import { findPgbench, pgbenchTps, type PgbenchResult } from "./support/pgbench";
import { cpuPer, cpuSnapshot, threadUse, webMainThread, type CpuByRole, type ThreadUse } from "./support/process-cpu";
import { maintenanceIn, maintenanceLine, watchMaintenance, withMaintenance, type Maintenance } from "./support/pg-maintenance";
import { gcPer, webGc, webReadings, type GcPerApproval } from "./support/web-gc";

const { values } = parseArgs({ options: { seconds: { type: "string" }, users: { type: "string" } } });
const SECONDS = benchNumber(values.seconds, "LATCHKEY_BENCH_SECONDS", 60);
const USERS = benchNumber(values.users, "LATCHKEY_BENCH_USERS", 50);
const loadAtStart = loadAverage();

// The web server's own metrics give its garbage collections per phase (scripts/support/web-gc.ts).
const METRICS_TOKEN = randomBytes(24).toString("hex");
// When the web server's garbage collections happened (major ones, and others that paused it 50 ms or more; scripts/support/gc-timeline.cjs, preloaded), to set beside the paced phase's episodes.
const GC_LOG = path.join(os.tmpdir(), `latchkey-bench-gc-${process.pid}.jsonl`);
const gcLog = () => (existsSync(GC_LOG) ? readFileSync(GC_LOG, "utf8") : "");
const portal = await startBenchPortal({
  LATCHKEY_METRICS_TOKEN: METRICS_TOKEN,
  LATCHKEY_BENCH_GC_LOG: GC_LOG,
  NODE_OPTIONS: nodeOptionsWith(path.resolve("scripts/support"), ["gc-timeline.cjs"]),
});
const gcNow = () => webGc(portal.url, METRICS_TOKEN);
// PostgreSQL's autovacuum workers, seen every 50 ms, to set beside the phases and the paced phase's episodes (scripts/support/pg-maintenance.ts).
const maintenance = await watchMaintenance(portal.adminUrl);
const { db, disconnectDb, poolSize } = await import("../lib/db");
const { createPersonalToken } = await import("../lib/identity/tokens");

async function person(email: string, groups: string[], scopes: string[]) {
  return (await createPersonalToken(await benchUser(email, groups), { name: "bench", scopes, expiresInDays: 1 })).secret;
}

const requesters = await Promise.all(
  Array.from({ length: Math.ceil(USERS / 2) }, (_, i) => person(`req${i}@bench.example.com`, ["engineering"], ["requests:read", "requests:write"])),
);
const approvers = await Promise.all(
  Array.from({ length: Math.floor(USERS / 2) }, (_, i) => person(`appr${i}@bench.example.com`, ["engineering-leads"], ["requests:read", "approvals:write"])),
);

const waiting: string[] = [];
/**
 * Approvers waiting for a request, and requesters waiting for room in the queue: woken when
 * there is one (an approver each request) or room, and at the phase's end, rather than looking
 * again every few milliseconds. Polling (25 approvers each every 2 ms while the queue was empty)
 * cost this client CPU that the floor's phase, calls in a loop with no queue, never spent, on
 * the same two cores as the portal.
 */
const forRequest: Array<() => void> = [];
const forRoom: Array<() => void> = [];
const wakeAll = (list: Array<() => void>) => list.splice(0).forEach((wake) => wake());
const waitIn = (list: Array<() => void>) => new Promise<void>((resolve) => list.push(resolve));
let latencies: number[] = [];
/** When each approval of the phase returned (ms since the phase began), with how long it took. */
let finishes: { at: number; ms: number }[] = [];
/** When the phase running now began (Date.now()). */
let phaseStarted = 0;
let requested = 0;
let approved = 0;
let errors = 0;
const errorSamples: string[] = [];
let deadline = 0;
/** Seconds each person waits between calls in a paced phase (0: none). */
let period = 0;
const pause = (seconds = period) => (seconds ? new Promise((r) => setTimeout(r, seconds * 1000 * (0.5 + Math.random()))) : Promise.resolve());
/** In a paced phase each person starts at a random moment of the first period, as people arriving do, not all in one burst. */
const arrive = (seconds = period) => (seconds ? new Promise((r) => setTimeout(r, seconds * 1000 * Math.random())) : Promise.resolve());

async function call(token: string, path: string, body: unknown) {
  const response = await fetch(`${portal.url}/api/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await response.json().catch(() => null)) as { id?: string; status?: string; credential?: unknown; detail?: string } | null;
  if (!response.ok) {
    errors += 1;
    if (errorSamples.length < 5) errorSamples.push(`${response.status} ${path}: ${json?.detail ?? ""}`);
  }
  return { ok: response.ok, json };
}

async function requester(token: string, n: number) {
  let i = 0;
  await arrive();
  while (Date.now() < deadline) {
    // Write access to staging needs a person's approval (reads under an hour are auto-approved).
    const { ok, json } = await call(token, "/requests", {
      workflowId: "temporary-access",
      input: { targetId: "payments-api-staging", role: "write", durationMinutes: 60, justification: `Load test request ${n}-${i++}` },
    });
    if (ok && json?.id) {
      requested += 1;
      waiting.push(json.id);
      forRequest.shift()?.();
    }
    // Requesters do not outrun approvers by more than one request a user, so that flat out the phase measures pairs of a
    // request and its approval, as the floor does: with a long queue, requests (the cheaper call) took the server's time
    // from approvals for the whole phase, and the figure measured that mix rather than the pairs the server can carry.
    while (waiting.length > USERS && Date.now() < deadline) await waitIn(forRoom);
    await pause();
  }
}

async function approver(token: string) {
  await arrive();
  while (Date.now() < deadline) {
    const id = waiting.shift();
    if (!id) {
      await waitIn(forRequest);
      continue;
    }
    if (waiting.length <= USERS) wakeAll(forRoom);
    const started = performance.now();
    const { ok, json } = await call(token, `/requests/${id}/approve`, { comment: "load test" });
    const ms = performance.now() - started;
    if (ok && json?.status === "active" && json.credential) {
      approved += 1;
      latencies.push(ms);
      finishes.push({ at: Date.now() - phaseStarted, ms });
    } else if (ok) {
      errors += 1;
      if (errorSamples.length < 5) errorSamples.push(`approved but status ${json?.status}`);
    }
    await pause();
  }
}

/**
 * Waits until the portal has caught up with what the last phase left it (audit events not yet
 * chained, jobs due and not done), so that each phase measures itself and not the previous
 * one's backlog; returns how long that took and how much there was.
 */
async function settle(): Promise<{ seconds: number; unchainedEvents: number; dueJobs: number }> {
  const started = Date.now();
  const backlog = async () => {
    const [row] = await db.$queryRaw<{ unchained: bigint; due: bigint }[]>`
      SELECT (SELECT count(*) FROM "AuditEvent" WHERE seq IS NULL) AS unchained,
             (SELECT count(*) FROM pgboss.job WHERE state IN ('created', 'retry', 'active') AND start_after <= now()) AS due`;
    return { unchainedEvents: Number(row!.unchained), dueJobs: Number(row!.due) };
  };
  const first = await backlog();
  for (let now = first; now.unchainedEvents + now.dueJobs > 0; now = await backlog()) {
    if (Date.now() - started > 120_000)
      throw new Error(`the portal did not catch up within 120 s: ${now.unchainedEvents} events unchained, ${now.dueJobs} jobs due`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { seconds: +((Date.now() - started) / 1000).toFixed(1), ...first };
}

/** Approvals one at a time: enough that the p99, the tail's denominator, is not one or two slow calls. */
const ONE_AT_A_TIME = 1000;
/** Approvals before those, not counted: the first calls load and compile the routes' code. */
const WARM_UP = 50;

/** One request, then its approval; the approval's time when it returned a credential. */
async function oneApproval(n: number): Promise<number | null> {
  const { json } = await call(requesters[0]!, "/requests", {
    workflowId: "temporary-access",
    input: { targetId: "payments-api-staging", role: "write", durationMinutes: 60, justification: `One at a time ${n}` },
  });
  const started = performance.now();
  const decided = await call(approvers[0]!, `/requests/${json!.id}/approve`, { comment: "alone" });
  return decided.json?.credential ? performance.now() - started : null;
}

// First, one approval at a time with nothing else going on: what an approval costs, without queueing behind others.
for (let i = 0; i < WARM_UP; i++) await oneApproval(-i);
await settle();
const aloneCpu = cpuSnapshot(portal.processGroup);
const aloneGcBefore = await gcNow();
const alone: number[] = [];
for (let i = 0; i < ONE_AT_A_TIME; i++) {
  const ms = await oneApproval(i);
  if (ms !== null) alone.push(ms);
}
const aloneCpuPer = cpuPer(aloneCpu, cpuSnapshot(portal.processGroup), alone.length);
const aloneGc = gcPer(aloneGcBefore, await gcNow(), alone.length);
alone.sort((a, b) => a - b);
const unloaded = { p50: +percentile(alone, 50).toFixed(1), p95: +percentile(alone, 95).toFixed(1), p99: +percentile(alone, 99).toFixed(1) };
console.log(
  `[bench] one at a time (${ONE_AT_A_TIME} approvals): approval → credential p50 ${unloaded.p50} ms   p95 ${unloaded.p95} ms   p99 ${unloaded.p99} ms`,
);

const autovacuumLine = (found: Maintenance[], failed: number) =>
  `${found.length ? found.map(maintenanceLine).join("   ") : "none seen"}${failed ? ` (not watched throughout: ${failed} looks failed)` : ""}`;
const collectionsLine = (found: Collection[]) => (found.length ? found.map((c) => `${c.kind} ${c.atSecond} s (${c.pauseMs} ms)`).join("   ") : "none");

/** The time of day (UTC, to a tenth of a second) `seconds` into a phase that began at `startedAt`. */
const clockAt = (startedAt: string, seconds: number) => new Date(Date.parse(startedAt) + seconds * 1000).toISOString().slice(11, 21);

/** Everyone at once for `seconds`, flat out or paced to about `rate` approvals a second in all. */
async function phase(seconds: number, rate?: number) {
  latencies = [];
  finishes = [];
  requested = 0;
  approved = 0;
  waiting.length = 0;
  period = rate ? approvers.length / rate : 0;
  deadline = Date.now() + seconds * 1000;
  phaseStarted = Date.now();
  const cpuBefore = cpuSnapshot(portal.processGroup);
  const threadBefore = webMainThread(portal.processGroup);
  const watchBefore = maintenance.counts();
  const { gc: gcBefore, poolWaits: waitsBefore } = await webReadings(portal.url, METRICS_TOKEN);
  // Those still waiting for the queue when time is up are woken, and find it up.
  const ending = setTimeout(() => [forRequest, forRoom].forEach(wakeAll), deadline - Date.now() + 5);
  await Promise.all([...requesters.map((t, n) => requester(t, n)), ...approvers.map((t) => approver(t))]);
  clearTimeout(ending);
  // Read as the phase's last call returns: the main thread's work for its calls is done.
  const mainThread = threadUse(threadBefore, webMainThread(portal.processGroup), approved);
  const elapsed = (Date.now() - phaseStarted) / 1000;
  // The CPU it took is counted once the portal has caught up with what the phase left it (settle()).
  const cpuMsPerApproval = () => cpuPer(cpuBefore, cpuSnapshot(portal.processGroup), approved);
  const gcPerApproval = async () => gcPer(gcBefore, await gcNow(), approved);
  const { poolWaits: waitsAfter } = await webReadings(portal.url, METRICS_TOKEN);
  latencies.sort((a, b) => a - b);
  const p99 = percentile(latencies, 99);
  // The web server's major collections, and others that paused it 50 ms or more, that ended during the phase; beside each slow episode the one that came with it.
  const collections = collectionsIn(gcLog(), phaseStarted, Date.now());
  // And the autovacuum work that ran in the phase, beside each slow episode the work that ran during it or ended in the second before.
  const autovacuum = maintenanceIn(maintenance.samples(), phaseStarted, Date.now());
  // Looks at the workers that failed in the phase: with any, "none seen" would not be true.
  const autovacuumLooksFailed = maintenance.counts().failures - watchBefore.failures;
  return {
    // Calls that found every connection of the web server's pool in use, and how long they waited in all.
    poolWaits: { calls: waitsAfter.calls - waitsBefore.calls, totalMs: Math.round((waitsAfter.seconds - waitsBefore.seconds) * 1000) },
    // The paced phase's only: flat out, every call queues behind the others by design.
    slowest: rate ? withMaintenance(withCollections(episodes(finishes.filter((f) => f.ms >= p99)), collections), autovacuum) : undefined,
    collections,
    autovacuum,
    autovacuumLooksFailed,
    // When the phase began by the clock (UTC): an episode's time of day tells whether it falls on a minute's turn.
    startedAt: new Date(phaseStarted).toISOString(),
    seconds: Math.round(elapsed),
    requestsPerSecond: +(requested / elapsed).toFixed(1),
    approvalsPerSecond: +(approved / elapsed).toFixed(1),
    approvalToCredentialMs: {
      p50: +percentile(latencies, 50).toFixed(1),
      p95: +percentile(latencies, 95).toFixed(1),
      p99: +percentile(latencies, 99).toFixed(1),
    },
    cpuMsPerApproval,
    gcPerApproval,
    mainThread,
  };
}

// The floor: as many pairs of calls as the framework carries when each call does almost nothing.
let floorErrors = 0;
async function floor(seconds: number, counted = true) {
  let pairs = 0;
  const until = Date.now() + seconds * 1000;
  const started = Date.now();
  await Promise.all(
    [...requesters, ...approvers].map(async () => {
      while (Date.now() < until) {
        let ok = true;
        for (let k = 0; k < 2; k++) {
          const response = await fetch(`${portal.url}/api/health`);
          await response.arrayBuffer();
          if (!response.ok) {
            if (counted) floorErrors += 1;
            ok = false;
          }
        }
        if (ok) pairs += 1;
      }
    }),
  );
  return { pairs, seconds: (Date.now() - started) / 1000 };
}

/**
 * Half of the floor, measured for `seconds` after a short unmeasured start: its pairs, and the
 * CPU and collections they took. The floor is measured in two halves, one just before the
 * flat-out phase and one just after it (once the portal has caught up), both printed, so that a
 * shared machine's drift over tens of seconds shows; the ratio uses the faster half, so the
 * drift can only make it smaller. In the first seven runs the half before was the slower, by 3
 * to 22%, also after a 10 s start instead of 2 s: not the code's warming up, and not explained.
 */
async function floorHalf(seconds: number) {
  await floor(2, false);
  // The metrics request first, so that it is not counted in the half's CPU.
  const gcBefore = await gcNow();
  const cpu = cpuSnapshot(portal.processGroup);
  const thread = webMainThread(portal.processGroup);
  const { pairs, seconds: took } = await floor(seconds);
  return {
    pairsPerSecond: +(pairs / took).toFixed(1),
    mainThread: threadUse(thread, webMainThread(portal.processGroup), pairs),
    cpu: cpuPer(cpu, cpuSnapshot(portal.processGroup), pairs),
    gc: gcPer(gcBefore, await gcNow(), pairs),
  };
}

/** Failed calls of the floor's tail (its one-at-a-time and paced calls, warm-up not counted): kept apart from the throughput floor's errors, and left out of its times. */
let floorTailErrors = 0;

/** One /api/health call (the floor's), timed in ms, or null when it was refused (counted unless `counted` is false). */
async function healthCall(counted = true): Promise<number | null> {
  const started = performance.now();
  // A refusal, or a connection that failed, is the floor's error, not the benchmark's end.
  const ok = await fetch(`${portal.url}/api/health`).then(
    async (response) => (await response.arrayBuffer(), response.ok),
    () => false,
  );
  const ms = performance.now() - started;
  if (ok) return ms;
  if (counted) floorTailErrors += 1;
  return null;
}

const summary = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: +percentile(sorted, 50).toFixed(2), p95: +percentile(sorted, 95).toFixed(2), p99: +percentile(sorted, 99).toFixed(2) };
};

/**
 * The floor's own tail, the approvals' tail's like for like. One at a time: pairs of
 * /api/health calls standing in for a request and its approval, the second of each pair timed,
 * as the approval is. Paced (floorPaced): the same requesters and approvers as the paced phase,
 * each calling /api/health and pausing as they do there, the approvers' calls timed, for as
 * long as the paced phase, to a share of the floor's flat-out rate. Its paced p99 over its
 * one-at-a-time p99 is what queueing for these two cores makes of a call that does almost
 * nothing: the approvals' tail ratio is read beside it. The paced runs start on a quiet
 * database (quiet()), and their garbage collections and autovacuum work are kept, so that a
 * stall the approvals left behind is not counted against the floor unseen.
 */
async function floorAlone(pairs: number, counted = true): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < pairs; i++) {
    await healthCall(counted);
    const ms = await healthCall(counted);
    if (ms !== null) times.push(ms);
  }
  return times;
}

async function floorPaced(seconds: number, pairsPerSecond: number) {
  // The paced phase's own arrival and pauses (arrive, pause), with its period for this rate: each requester and each approver waits `every` seconds on average between one call's answer and its next call.
  const every = approvers.length / pairsPerSecond;
  /** When each timed call returned (ms since the run began), with how long it took: its slowest are grouped into episodes as the paced phase's are. */
  const returned: { at: number; ms: number }[] = [];
  const started = Date.now();
  const until = started + seconds * 1000;
  const person = async (timed: boolean) => {
    await arrive(every);
    while (Date.now() < until) {
      const ms = await healthCall();
      if (timed && ms !== null) returned.push({ at: Date.now() - started, ms });
      await pause(every);
    }
  };
  const failedBefore = maintenance.counts().failures;
  await Promise.all([...requesters.map(() => person(false)), ...approvers.map(() => person(true))]);
  const ended = Date.now();
  const collections = collectionsIn(gcLog(), started, ended);
  const autovacuum = maintenanceIn(maintenance.samples(), started, ended);
  const times = returned.map((r) => r.ms);
  const p99 = percentile([...times].sort((a, b) => a - b), 99);
  return {
    target: pairsPerSecond,
    // The approvers' calls a second, each standing for a pair (the requesters make about as many, not timed), as approvals a second do in the paced phase.
    timedPerSecond: +(times.length / ((ended - started) / 1000)).toFixed(1),
    ms: summary(times),
    // Its calls at or above its p99, by episode, each with the collection and the autovacuum work beside it, as the paced phase's.
    slowest: withMaintenance(withCollections(episodes(returned.filter((r) => r.ms >= p99)), collections), autovacuum),
    collections,
    autovacuum,
    // Looks at the autovacuum workers that failed during the run: with any, "none seen" would not be true.
    autovacuumLooksFailed: maintenance.counts().failures - failedBefore,
  };
}

/**
 * Waits until a second has passed in which the autovacuum workers were looked at (at least ten
 * looks answered) and none was seen, so that the floor's paced runs do not meet the maintenance
 * the approvals' writes called for; gives up after 120 s. Returns the seconds it waited and
 * whether it ended on such a second.
 */
async function quiet(): Promise<{ seconds: number; quiet: boolean }> {
  const started = Date.now();
  for (;;) {
    const { looks } = maintenance.counts();
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const seen = maintenance.samples().some((sample) => sample.at >= from);
    const seconds = +((Date.now() - started) / 1000).toFixed(1);
    if (!seen && maintenance.counts().looks - looks >= 10) return { seconds, quiet: true };
    if (Date.now() - started > 120_000) return { seconds, quiet: false };
  }
}

/** Each half of the floor: a quarter of the flat-out phase, at most 7.5 s (the one floor before 2026-12-01 lasted up to 15 s). */
const FLOOR_HALF_SECONDS = Math.min(7.5, SECONDS / 4);

// The floor's one at a time, as quiet as the approvals' one at a time just before it.
await settle();
await floorAlone(WARM_UP, false);
const floorAloneMs = summary(await floorAlone(ONE_AT_A_TIME));
console.log(`[bench] the floor one pair at a time (${ONE_AT_A_TIME} pairs): the second call p50 ${floorAloneMs.p50} ms   p95 ${floorAloneMs.p95} ms   p99 ${floorAloneMs.p99} ms`);
await settle();
const floorBefore = await floorHalf(FLOOR_HALF_SECONDS);
console.log(
  `[bench] ${requesters.length} requesters and ${approvers.length} approvers for ${SECONDS} s against ${portal.url} (production build, ${poolSize()} database connections a process)…`,
);
await settle();
const flatOutPhase = await phase(SECONDS);
// The paced phase starts once the flat-out backlog is worked off: its first seconds would otherwise measure that drain, not latency below saturation.
const drained = await settle();
const flatOut = { ...flatOutPhase, cpuMsPerApproval: flatOutPhase.cpuMsPerApproval(), gcPerApproval: await flatOutPhase.gcPerApproval() };
console.log(
  `[bench] the flat-out phase left ${drained.unchainedEvents} audit events to chain and ${drained.dueJobs} jobs due: caught up in ${drained.seconds} s`,
);
const floorAfter = await floorHalf(FLOOR_HALF_SECONDS);
// Then the same people each pausing between calls, to about three quarters of what was just reached.
const paceTo = Math.max(1, Math.round(flatOut.approvalsPerSecond * 0.75));
console.log(`[bench] then paced to about ${paceTo} approvals a second for ${Math.round(SECONDS / 2)} s…`);
const pacedPhase = await phase(Math.round(SECONDS / 2), paceTo);

await settle();
const paced = { ...pacedPhase, cpuMsPerApproval: pacedPhase.cpuMsPerApproval(), gcPerApproval: await pacedPhase.gcPerApproval() };
// Then at half the flat-out rate, for as long: how the tail grows with the load (the targets are judged at three quarters, as in every round).
const halfTo = Math.max(1, Math.round(flatOut.approvalsPerSecond * 0.5));
console.log(`[bench] then paced to about ${halfTo} approvals a second (half the flat-out rate) for ${Math.round(SECONDS / 2)} s…`);
const halfPhase = await phase(Math.round(SECONDS / 2), halfTo);
await settle();
const pacedAtHalf = { target: halfTo, ...halfPhase, cpuMsPerApproval: halfPhase.cpuMsPerApproval(), gcPerApproval: await halfPhase.gcPerApproval() };
const fasterFloor = floorAfter.pairsPerSecond >= floorBefore.pairsPerSecond ? floorAfter : floorBefore;
const { pairsPerSecond: floorPairsPerSecond, cpu: floorCpuPerPair, gc: floorGcPerPair, mainThread: floorMainThread } = fasterFloor;

// The floor paced as the approvals were, for as long, to three quarters of its faster half and then to half of it, each on a quiet database: its tail, the approvals' tail's like for like.
const floorPaceTo = Math.max(1, Math.round(floorPairsPerSecond * 0.75));
const floorHalfTo = Math.max(1, Math.round(floorPairsPerSecond * 0.5));
console.log(`[bench] the floor paced to about ${floorPaceTo} pairs a second, then to ${floorHalfTo} (half its flat-out rate), for ${Math.round(SECONDS / 2)} s each, each once no autovacuum worker is seen…`);
await settle();
const quietBeforePaced = await quiet();
const floorPacedRun = await floorPaced(Math.round(SECONDS / 2), floorPaceTo);
const quietBeforeHalf = await quiet();
const floorHalfRun = await floorPaced(Math.round(SECONDS / 2), floorHalfTo);
const floorTail = {
  oneAtATimeMs: floorAloneMs,
  paced: { ...floorPacedRun, waitedForQuiet: quietBeforePaced },
  pacedAtHalf: { ...floorHalfRun, waitedForQuiet: quietBeforeHalf },
  errors: floorTailErrors,
};
/** The share of a flat-out rate a paced run reached (each person's pause comes after the call's answer, so a paced run falls short of its target). */
const share = (reached: number, flatOutRate: number) => ratio(reached, flatOutRate, 2);
const loadShares = {
  paced: share(paced.approvalsPerSecond, flatOut.approvalsPerSecond),
  pacedAtHalf: share(pacedAtHalf.approvalsPerSecond, flatOut.approvalsPerSecond),
  floorPaced: share(floorTail.paced.timedPerSecond, floorPairsPerSecond),
  floorPacedAtHalf: share(floorTail.pacedAtHalf.timedPerSecond, floorPairsPerSecond),
};

const [doubles] = await db.$queryRaw<{ n: bigint }[]>`
  SELECT count(*) AS n FROM (SELECT "requestId" FROM "AuditEvent" WHERE action IN ('credential.issued', 'request.approved') GROUP BY "requestId", action HAVING count(*) > 1) d`;
const [chain] = await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "AuditEvent"`;

// PostgreSQL's write rate on the same server: TPC-B-like, as many clients as approvers and requesters (at most 32), 20 s (less in a shorter run).
const pgbenchBinary = findPgbench();
let pgbench: PgbenchResult | null = null;
if (pgbenchBinary) {
  console.log(`[bench] pgbench (${pgbenchBinary}) on a scratch database of the same server…`);
  pgbench = await pgbenchTps(pgbenchBinary, portal.adminUrl, { scale: 10, clients: Math.min(USERS, 32), threads: 2, seconds: Math.min(20, SECONDS) });
}

const doubleExecutions = Number(doubles?.n ?? 0);
const ratios = {
  approvalsOverFloor: ratio(flatOut.approvalsPerSecond, floorPairsPerSecond),
  approvalsOverPgbenchTps: ratio(flatOut.approvalsPerSecond, pgbench?.tps, 4),
  pacedP99OverOneAtATimeP99: ratio(paced.approvalToCredentialMs.p99, unloaded.p99, 2),
  // The same ratio for the floor's second call, paced to the same share of its own flat-out rate (floorPaced): the tail queueing alone makes here.
  floorPacedP99OverOneAtATimeP99: ratio(floorTail.paced.ms.p99, floorTail.oneAtATimeMs.p99, 2),
  // Both at half the flat-out rate.
  pacedAtHalfP99OverOneAtATimeP99: ratio(pacedAtHalf.approvalToCredentialMs.p99, unloaded.p99, 2),
  floorPacedAtHalfP99OverOneAtATimeP99: ratio(floorTail.pacedAtHalf.ms.p99, floorTail.oneAtATimeMs.p99, 2),
  // The floor pair's time on the web server's main thread over the approval's, flat out: the two costs on the thread that
  // limits them both, whatever the machine's other work took from that thread (not a target; see webMainThread).
  floorOverApprovalMainThreadMs: floorMainThread && flatOut.mainThread ? ratio(floorMainThread.onCpuMsPer, flatOut.mainThread.onCpuMsPer) : null,
};
const figures = {
  users: USERS,
  // Each process's connections to PostgreSQL (LATCHKEY_DB_POOL_SIZE, inherited by the portal it started).
  poolSize: poolSize(),
  ...flatOut,
  approvalToCredentialOneAtATimeMs: unloaded,
  oneAtATimeCpuMsPerApproval: aloneCpuPer,
  oneAtATimeGcPerApproval: aloneGc,
  afterFlatOut: drained,
  paced: { target: paceTo, ...paced },
  pacedAtHalf,
  errors,
  doubleExecutions,
  auditEvents: Number(chain?.n ?? 0),
  floor: {
    pairsOfHealthCallsPerSecond: floorPairsPerSecond,
    beforeFlatOut: floorBefore.pairsPerSecond,
    afterFlatOut: floorAfter.pairsPerSecond,
    errors: floorErrors,
    cpuMsPerPair: floorCpuPerPair,
    gcPerPair: floorGcPerPair,
    mainThread: floorMainThread,
    tail: floorTail,
  },
  // The share of its own flat-out rate each paced run reached.
  loadShares,
  pgbench,
  ratios,
};
const cpuLine = (name: string, c: CpuByRole) =>
  `${name.padEnd(14)} ${(["web", "worker", "postgres", "client"] as const).map((role) => `${role} ${c[role] ?? "—"}`).join("   ")}`;
const threadLine = (name: string, t: ThreadUse | null) =>
  `${name.padEnd(14)} ${t ? `on a CPU ${t.onCpuMsPer} ms   on a CPU ${t.onCpuShare} of the time   waiting for a CPU ${t.waitingShare}` : "— (no schedstat here)"}`;
const gcLine = (name: string, g: GcPerApproval) =>
  `${name.padEnd(14)} ${Object.entries(g)
    .filter(([, v]) => v.collections > 0)
    .map(([kind, v]) => `${kind} ${v.collections} (${v.msPerApproval} ms)`)
    .join("   ")}`;
const line = (name: string, f: typeof flatOut) =>
  `${name.padEnd(14)} ${f.requestsPerSecond} requests/s, ${f.approvalsPerSecond} approvals/s; approval → credential p50 ${f.approvalToCredentialMs.p50} ms   p95 ${f.approvalToCredentialMs.p95} ms   p99 ${f.approvalToCredentialMs.p99} ms`;
console.log(`
${line("flat out", flatOut)}
${line("paced", paced)}
${line("paced at half", pacedAtHalf)}
one at a time  approval → credential p50 ${unloaded.p50} ms   p95 ${unloaded.p95} ms   p99 ${unloaded.p99} ms
errors         ${errors}${errorSamples.length ? `  e.g. ${errorSamples.join(" | ")}` : ""}
double executions  ${doubleExecutions}
floor          ${floorPairsPerSecond} pairs of /api/health calls/s with the same ${USERS} users (the faster half: before flat out ${floorBefore.pairsPerSecond}, after ${floorAfter.pairsPerSecond})${floorErrors ? ` (${floorErrors} health calls failed)` : ""}
${
  pgbench
    ? `pgbench        ${pgbench.tps} tps (TPC-B-like, scale ${pgbench.settings.scale}, ${pgbench.settings.clients} clients, ${pgbench.settings.threads} threads, ${pgbench.settings.seconds} s)`
    : "pgbench        not found on the PATH or under /usr/lib/postgresql (Debian: postgresql-contrib or the server package): ratio skipped"
}

CPU ms per approval (its request and its approval) or per floor pair, by process (/proc)
  ${cpuLine("one at a time", aloneCpuPer)}
  ${cpuLine("flat out", flatOut.cpuMsPerApproval)}
  ${cpuLine("paced", paced.cpuMsPerApproval)}
  ${cpuLine("paced at half", pacedAtHalf.cpuMsPerApproval)}
  ${cpuLine("floor pair", floorCpuPerPair)}

the web server's main thread, flat out: time on a CPU per approval or per floor pair, and the shares of the phase it spent on a CPU and waiting for one (/proc schedstat)
  ${threadLine("flat out", flatOut.mainThread)}
  ${threadLine("floor pair", floorMainThread)}

garbage collections in the web server by kind, and their pause time per approval or per floor pair
  ${gcLine("one at a time", aloneGc)}
  ${gcLine("flat out", flatOut.gcPerApproval)}
  ${gcLine("paced", paced.gcPerApproval)}
  ${gcLine("paced at half", pacedAtHalf.gcPerApproval)}
  ${gcLine("floor pair", floorGcPerPair)}

ratios (same run)
  approvals/s ÷ floor pairs/s          ${ratios.approvalsOverFloor}
  approvals/s ÷ pgbench tps            ${ratios.approvalsOverPgbenchTps ?? "—"}
  floor pair ÷ approval, in time on the web server's main thread   ${ratios.floorOverApprovalMainThreadMs ?? "—"}
  paced p99 ÷ one-at-a-time p99        ${ratios.pacedP99OverOneAtATimeP99}
  the floor's: paced p99 ÷ one at a time p99   ${ratios.floorPacedP99OverOneAtATimeP99} (${floorTail.paced.ms.p99} ÷ ${floorTail.oneAtATimeMs.p99} ms; paced p50 ${floorTail.paced.ms.p50} ms, p95 ${floorTail.paced.ms.p95} ms)
  at half the flat-out rate: paced p99 ÷ one-at-a-time p99   ${ratios.pacedAtHalfP99OverOneAtATimeP99} (${pacedAtHalf.approvalToCredentialMs.p99} ÷ ${unloaded.p99} ms); the floor's ${ratios.floorPacedAtHalfP99OverOneAtATimeP99} (${floorTail.pacedAtHalf.ms.p99} ÷ ${floorTail.oneAtATimeMs.p99} ms)
  the share of its flat-out rate each paced run reached: approvals ${loadShares.paced} (${paced.approvalsPerSecond} of ${flatOut.approvalsPerSecond}/s) and ${loadShares.pacedAtHalf} (${pacedAtHalf.approvalsPerSecond}/s); the floor ${loadShares.floorPaced} (${floorTail.paced.timedPerSecond} of ${floorPairsPerSecond}/s) and ${loadShares.floorPacedAtHalf} (${floorTail.pacedAtHalf.timedPerSecond}/s)
  the floor's paced runs began after waiting ${[floorTail.paced.waitedForQuiet, floorTail.pacedAtHalf.waitedForQuiet].map((w) => `${w.seconds} s (${w.quiet ? "its last second with no autovacuum worker seen" : "NOT QUIET: gave up after 120 s"})`).join(" and ")}; in them: collections ${collectionsLine(floorTail.paced.collections)} | ${collectionsLine(floorTail.pacedAtHalf.collections)}; autovacuum ${autovacuumLine(floorTail.paced.autovacuum, floorTail.paced.autovacuumLooksFailed)} | ${autovacuumLine(floorTail.pacedAtHalf.autovacuum, floorTail.pacedAtHalf.autovacuumLooksFailed)}${floorTailErrors ? `; ${floorTailErrors} of its calls failed (left out of its times)` : ""}

calls that waited for a database connection in the web server (its pool all in use)
  flat out ${flatOut.poolWaits.calls} (${flatOut.poolWaits.totalMs} ms in all)   paced ${paced.poolWaits.calls} (${paced.poolWaits.totalMs} ms in all)

the paced phase's approvals at or above its p99 (${(paced.slowest ?? []).reduce((n, e) => n + e.approvals, 0)}), by episode (each returning within 300 ms of the one before)
  ${(paced.slowest ?? []).map((e) => `${e.fromSecond} to ${e.atSecond} s (${clockAt(paced.startedAt, e.fromSecond)}): ${e.approvals} up to ${e.slowestMs} ms${e.collection === null ? ", no collection" : `, a ${e.collection.kind} collection ended at ${e.collection.atSecond} s (${e.collection.pauseMs} ms pause)`}${e.maintenance.length ? `, autovacuum: ${e.maintenance.map((m) => `${m.work} ${m.fromSecond} to ${m.toSecond} s`).join(", ")}` : paced.autovacuumLooksFailed ? ", autovacuum not watched throughout" : ", no autovacuum"}`).join("   ")}
the floor's paced calls at or above its p99, by episode: ${floorTail.paced.slowest.map((e) => `${e.fromSecond} to ${e.atSecond} s: ${e.approvals} calls up to ${e.slowestMs} ms${e.collection === null ? ", no collection" : `, a ${e.collection.kind} collection ended at ${e.collection.atSecond} s (${e.collection.pauseMs} ms pause)`}${e.maintenance.length ? ", autovacuum" : ""}`).join("   ") || "none"}
the web server's major garbage collections, and others that paused it 50 ms or more (when each pause ended, and the pause)
  flat out ${collectionsLine(flatOut.collections)}
  paced    ${collectionsLine(paced.collections)}
PostgreSQL's autovacuum workers (what each did, from when to when it was seen, and the CPU it took meanwhile)
  flat out ${autovacuumLine(flatOut.autovacuum, flatOut.autovacuumLooksFailed)}
  paced    ${autovacuumLine(paced.autovacuum, paced.autovacuumLooksFailed)}`);
const targets = judge([
  {
    target: "paced p99 ≤ 3 × one-at-a-time p99",
    figure: `${paced.approvalToCredentialMs.p99} ÷ ${unloaded.p99} ms = ${ratios.pacedP99OverOneAtATimeP99}`,
    met: (ratios.pacedP99OverOneAtATimeP99 ?? Infinity) <= 3,
  },
  {
    target: "flat-out approvals ≥ 0.3 × the framework floor",
    figure: `${flatOut.approvalsPerSecond} ÷ ${floorPairsPerSecond} = ${ratios.approvalsOverFloor}`,
    met: (ratios.approvalsOverFloor ?? 0) >= 0.3,
  },
  { target: "0 errors", figure: String(errors), met: errors === 0 },
  { target: "0 double executions", figure: String(doubleExecutions), met: doubleExecutions === 0 },
]);
saveResults("approvals", { ...figures, targets, loadAverage: { atStart: loadAtStart, atEnd: loadAverage() } });
await maintenance.stop();
await disconnectDb();
await portal.stop();
rmSync(GC_LOG, { force: true });
