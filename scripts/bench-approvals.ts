/**
 * npm run bench:approvals [-- --seconds 60 --users 50]
 * Against the production build over HTTP: first 100 approvals one at a time; then half the
 * users request access through the API and half approve what is waiting, flat out for the
 * given time, then for half as long paced to three quarters of the rate reached (each
 * person pausing between calls), which shows the latency below saturation. Prints requests and approvals per
 * second, p50/p95/p99 from approval to issued credential (the approve call returns once
 * the credential is signed and stored), errors and double executions (both must be 0).
 * With pgbench on the PATH it also prints approvals per second as a ratio of pgbench's
 * write transactions per second on the same server. Last, the same users each make two calls
 * of /api/health (one `SELECT 1`) in a loop: the most request-and-approve pairs a second the
 * web framework and this client could carry on this machine if each did nothing else.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, users: { type: "string", default: "50" } } });
const SECONDS = Number(values.seconds);
const USERS = Number(values.users);

const portal = await startBenchPortal();
const { db, disconnectDb } = await import("../lib/db");
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
let latencies: number[] = [];
let requested = 0;
let approved = 0;
let errors = 0;
const errorSamples: string[] = [];
let deadline = 0;
/** Seconds each person waits between calls in a paced phase (0: none). */
let period = 0;
const pause = () => (period ? new Promise((r) => setTimeout(r, period * 1000 * (0.5 + Math.random()))) : Promise.resolve());

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
  while (Date.now() < deadline) {
    // Write access to staging needs a person's approval (reads under an hour are auto-approved).
    const { ok, json } = await call(token, "/requests", {
      workflowId: "temporary-access",
      input: { targetId: "payments-api-staging", role: "write", durationMinutes: 60, justification: `Load test request ${n}-${i++}` },
    });
    if (ok && json?.id) {
      requested += 1;
      waiting.push(json.id);
    }
    // Requesters do not outrun approvers by more than a few hundred requests.
    while (waiting.length > 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await pause();
  }
}

async function approver(token: string) {
  while (Date.now() < deadline) {
    const id = waiting.shift();
    if (!id) {
      await new Promise((r) => setTimeout(r, 2));
      continue;
    }
    const started = performance.now();
    const { ok, json } = await call(token, `/requests/${id}/approve`, { comment: "load test" });
    const ms = performance.now() - started;
    if (ok && json?.status === "active" && json.credential) {
      approved += 1;
      latencies.push(ms);
    } else if (ok) {
      errors += 1;
      if (errorSamples.length < 5) errorSamples.push(`approved but status ${json?.status}`);
    }
    await pause();
  }
}

// First, one approval at a time with nothing else going on: what an approval costs, without queueing behind others.
const alone: number[] = [];
for (let i = 0; i < 100; i++) {
  const { json } = await call(requesters[0]!, "/requests", {
    workflowId: "temporary-access",
    input: { targetId: "payments-api-staging", role: "write", durationMinutes: 60, justification: `One at a time ${i}` },
  });
  const started = performance.now();
  const decided = await call(approvers[0]!, `/requests/${json!.id}/approve`, { comment: "alone" });
  if (decided.json?.credential) alone.push(performance.now() - started);
}
alone.sort((a, b) => a - b);
const unloaded = { p50: +percentile(alone, 50).toFixed(1), p95: +percentile(alone, 95).toFixed(1), p99: +percentile(alone, 99).toFixed(1) };
console.log(`[bench] one at a time (100 approvals): approval → credential p50 ${unloaded.p50} ms   p95 ${unloaded.p95} ms   p99 ${unloaded.p99} ms`);

/** Everyone at once for `seconds`, flat out or paced to about `rate` approvals a second in all. */
async function phase(seconds: number, rate?: number) {
  latencies = [];
  requested = 0;
  approved = 0;
  waiting.length = 0;
  period = rate ? approvers.length / rate : 0;
  deadline = Date.now() + seconds * 1000;
  const started = Date.now();
  await Promise.all([...requesters.map((t, n) => requester(t, n)), ...approvers.map((t) => approver(t))]);
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    seconds: Math.round(elapsed),
    requestsPerSecond: +(requested / elapsed).toFixed(1),
    approvalsPerSecond: +(approved / elapsed).toFixed(1),
    approvalToCredentialMs: {
      p50: +percentile(latencies, 50).toFixed(1),
      p95: +percentile(latencies, 95).toFixed(1),
      p99: +percentile(latencies, 99).toFixed(1),
    },
  };
}

console.log(`[bench] ${requesters.length} requesters and ${approvers.length} approvers for ${SECONDS} s against ${portal.url} (production build)…`);
const flatOut = await phase(SECONDS);
// Then the same people each pausing between calls, to about three quarters of what was just reached.
const paceTo = Math.max(1, Math.round(flatOut.approvalsPerSecond * 0.75));
console.log(`[bench] then paced to about ${paceTo} approvals a second for ${Math.round(SECONDS / 2)} s…`);
const paced = await phase(Math.round(SECONDS / 2), paceTo);

// The floor: as many pairs of calls as the framework carries when each call does almost nothing.
let floorErrors = 0;
async function floor(seconds: number) {
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
            floorErrors += 1;
            ok = false;
          }
        }
        if (ok) pairs += 1;
      }
    }),
  );
  return +(pairs / ((Date.now() - started) / 1000)).toFixed(1);
}
await floor(2);
floorErrors = 0;
const floorPairsPerSecond = await floor(Math.min(15, SECONDS));

const [doubles] = await db.$queryRaw<{ n: bigint }[]>`
  SELECT count(*) AS n FROM (SELECT "requestId" FROM "AuditEvent" WHERE action IN ('credential.issued', 'request.approved') GROUP BY "requestId", action HAVING count(*) > 1) d`;
const [chain] = await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "AuditEvent"`;

let pgbench: { tps: number; ratio: number } | null = null;
if (spawnSync("which", ["pgbench"]).status === 0) {
  const url = new URL(portal.adminUrl);
  const env = {
    ...process.env,
    PGHOST: url.hostname,
    PGPORT: url.port || "5432",
    PGUSER: decodeURIComponent(url.username || "postgres"),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: "latchkey_pgbench",
  };
  spawnSync("psql", ["-d", "postgres", "-c", "DROP DATABASE IF EXISTS latchkey_pgbench", "-c", "CREATE DATABASE latchkey_pgbench"], { env, stdio: "ignore" });
  execFileSync("pgbench", ["-i", "-q", "-s", "10"], { env, stdio: "ignore" });
  const out = execFileSync("pgbench", ["-c", String(Math.min(USERS, 32)), "-j", "2", "-T", "20"], { env, encoding: "utf8" });
  const tps = Number(out.match(/tps = ([\d.]+)/)?.[1] ?? NaN);
  spawnSync("psql", ["-d", "postgres", "-c", "DROP DATABASE IF EXISTS latchkey_pgbench"], { env, stdio: "ignore" });
  pgbench = { tps, ratio: flatOut.approvalsPerSecond / tps };
}

const figures = {
  users: USERS,
  ...flatOut,
  approvalToCredentialOneAtATimeMs: unloaded,
  paced: { target: paceTo, ...paced },
  errors,
  doubleExecutions: Number(doubles?.n ?? 0),
  auditEvents: Number(chain?.n ?? 0),
  pgbench,
  floor: {
    pairsOfHealthCallsPerSecond: floorPairsPerSecond,
    errors: floorErrors,
    approvalsShare: +(flatOut.approvalsPerSecond / floorPairsPerSecond).toFixed(3),
  },
};
const line = (name: string, f: typeof flatOut) =>
  `${name.padEnd(10)} ${f.requestsPerSecond} requests/s, ${f.approvalsPerSecond} approvals/s; approval → credential p50 ${f.approvalToCredentialMs.p50} ms   p95 ${f.approvalToCredentialMs.p95} ms   p99 ${f.approvalToCredentialMs.p99} ms`;
console.log(`
${line("flat out", flatOut)}
${line("paced", paced)}
one at a time  approval → credential p50 ${unloaded.p50} ms   p95 ${unloaded.p95} ms   p99 ${unloaded.p99} ms
errors         ${errors}${errorSamples.length ? `  e.g. ${errorSamples.join(" | ")}` : ""}
double executions  ${figures.doubleExecutions}
floor          ${floorPairsPerSecond} pairs of /api/health calls/s with the same ${USERS} users; Latchkey approvals/s ÷ floor = ${figures.floor.approvalsShare}${floorErrors ? ` (${floorErrors} health calls failed)` : ""}
${pgbench ? `pgbench        ${pgbench.tps.toFixed(0)} tps (TPC-B-like, ${Math.min(USERS, 32)} clients); Latchkey approvals/s ÷ pgbench tps = ${pgbench.ratio.toFixed(3)}` : "pgbench        not installed (apt-get install postgresql-contrib or the client package) — ratio skipped"}`);
saveResults("approvals", figures);
await disconnectDb();
await portal.stop();
