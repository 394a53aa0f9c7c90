import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import type PgBoss from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { faultWorkflow } from "../helpers/fault-workflow";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Faults: two workers on one database, an outside system that is slow or fails, and a
 * portal that was down while grants ran out. The outside system here records every call
 * in a table of the test database, so double executions and double revocations show.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
const workers: PgBoss[] = [];
let failuresLeft = 0;

const input = (n: number) => ({ targetId: "scratch", durationMinutes: 1, justification: `fault drill number ${n}` });

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  await fx.db.$executeRawUnsafe(`CREATE TABLE outside_calls (request_id text NOT NULL, kind text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  const { registerWorkflow } = await import("@/lib/workflows/registry");
  registerWorkflow(
    faultWorkflow({
      async perform({ request }) {
        // Slow, and failing now and then, like a real outside system.
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error("outside system answered 503");
        }
        await fx.db.$executeRaw`INSERT INTO outside_calls (request_id, kind) VALUES (${request.id}, 'perform')`;
        return { audit: { opened: request.id } };
      },
      async undo({ request }) {
        await fx.db.$executeRaw`INSERT INTO outside_calls (request_id, kind) VALUES (${request.id}, 'undo')`;
      },
    }),
  );
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  for (const w of workers) await w.stop({ graceful: false, wait: true }).catch(() => undefined);
  await fx?.close();
});

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

const calls = async (kind: string) =>
  fx.db.$queryRaw<{ request_id: string; n: number }[]>`SELECT request_id, count(*)::int AS n FROM outside_calls WHERE kind = ${kind} GROUP BY request_id`;

describe("two workers on one database", () => {
  it("carry out each approved request exactly once and undo each exactly once, with retries after failures", async () => {
    const { startWorker } = await import("@/lib/jobs/worker");
    workers.push(await startWorker(fx.url, { pollingIntervalSeconds: 0.5 }), await startWorker(fx.url, { pollingIntervalSeconds: 0.5 }));
    failuresLeft = 4;
    const requests = await Promise.all(Array.from({ length: 12 }, (_, n) => engine.createRequest(alice, "fault-grant", input(n))));
    // Approvers race as well: two decide each request at once; one wins, the other is told it is decided.
    const lee = await fx.user("lee@example.com", ["engineering-leads"]);
    await Promise.all(
      requests.flatMap((r) =>
        [
          engine.decide(bob, { requestId: r.id, decision: "approve", comment: "go" }),
          engine.decide(lee, { requestId: r.id, decision: "approve", comment: "go" }),
        ].map((p) => p.catch((e) => e)),
      ),
    );
    const ids = requests.map((r) => r.id);
    const took = await until(
      async () => (await fx.db.accessRequest.count({ where: { id: { in: ids }, status: "active" } })) === ids.length,
      60_000,
      "every grant active",
    );
    expect(took).toBeLessThan(60_000);
    const performed = await calls("perform");
    const doubled = performed.filter((c) => c.n > 1).map((c) => c.request_id);
    if (doubled.length)
      console.error(
        "performed more than once; the events of the first such request:",
        JSON.stringify(
          await fx.db.auditEvent.findMany({ where: { requestId: doubled[0] }, orderBy: { id: "asc" }, select: { action: true, route: true, data: true } }),
        ),
      );
    expect(performed.length).toBe(ids.length);
    expect(performed.every((c) => c.n === 1)).toBe(true);
    expect(await fx.db.approval.count({ where: { requestId: { in: ids } } })).toBe(ids.length);
    expect(await fx.db.auditEvent.count({ where: { requestId: { in: ids }, action: "request.execution_retry" } })).toBe(4);

    // Revoke all at once, twice over (a person and a double click): each is undone once.
    await Promise.all(
      ids.flatMap((id) => [
        engine.revokeGrant(alice, { requestId: id, reason: "drill over" }),
        engine.revokeGrant(alice, { requestId: id, reason: "drill over" }),
      ]),
    );
    await until(
      async () => (await calls("undo")).length === ids.length && (await fx.db.accessRequest.count({ where: { id: { in: ids }, undoPending: true } })) === 0,
      30_000,
      "every grant undone",
    );
    expect((await calls("undo")).every((c) => c.n === 1)).toBe(true);
    expect(await fx.db.auditEvent.count({ where: { requestId: { in: ids }, action: "grant.revoked" } })).toBe(ids.length);
  });
});

describe("a portal that was down", () => {
  it("revokes every grant that ran out meanwhile in the outside system within 30 seconds of coming back", async () => {
    for (const w of workers.splice(0)) await w.stop({ graceful: true, wait: true });
    const { startWorker } = await import("@/lib/jobs/worker");
    const boot = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    const requests = await Promise.all(Array.from({ length: 5 }, (_, n) => engine.createRequest(alice, "fault-grant", input(100 + n))));
    for (const r of requests) await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "go" });
    const ids = requests.map((r) => r.id);
    await until(async () => (await fx.db.accessRequest.count({ where: { id: { in: ids }, status: "active" } })) === ids.length, 30_000, "grants active");
    // The portal goes down; while it is down the grants run out.
    await boot.stop({ graceful: true, wait: true });
    await fx.db.accessRequest.updateMany({ where: { id: { in: ids } }, data: { expiresAt: new Date(Date.now() - 60_000) } });
    const restarted = Date.now();
    workers.push(await startWorker(fx.url, { pollingIntervalSeconds: 0.5 }));
    await until(
      async () => (await fx.db.accessRequest.count({ where: { id: { in: ids }, status: "expired", undoPending: false } })) === ids.length,
      30_000,
      "every overdue grant revoked in the outside system",
    );
    const undone = (await calls("undo")).filter((c) => ids.includes(c.request_id));
    expect(undone.map((c) => c.n)).toEqual(ids.map(() => 1));
    expect(Date.now() - restarted).toBeLessThan(30_000);
  });
});

describe("a worker killed in the middle of an execution", () => {
  function startChild(): Promise<ChildProcess> {
    const child = spawn(path.join(process.cwd(), "node_modules/.bin/tsx"), ["--conditions=react-server", "tests/helpers/fault-worker.ts", fx.url], {
      env: { ...process.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new Promise((resolve, reject) => {
      let output = "";
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("worker ready")) resolve(child);
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.on("exit", (code) => reject(new Error(`the worker exited (${code}): ${output}`)));
    });
  }

  it("finishes the execution exactly once after a restart, with nothing half-applied", async () => {
    for (const w of workers.splice(0)) await w.stop({ graceful: true, wait: true });
    const first = await startChild();
    const request = await engine.createRequest(alice, "fault-grant", input(500));
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "go" });
    await until(
      async () => (await fx.db.$queryRaw<unknown[]>`SELECT 1 FROM outside_calls WHERE request_id = ${request.id} AND kind = 'perform-started'`).length === 1,
      20_000,
      "the execution started",
    );
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({ status: "executing", activatedAt: null });
    expect(await fx.db.$queryRaw<unknown[]>`SELECT 1 FROM outside_calls WHERE request_id = ${request.id} AND kind = 'applied'`).toHaveLength(0);
    // Time passes (the sweep leaves executions younger than a minute to their own job).
    await fx.db.$executeRaw`UPDATE "AccessRequest" SET "updatedAt" = now() - interval '2 minutes' WHERE id = ${request.id}`;
    const second = await startChild();
    try {
      await until(
        async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status === "active",
        30_000,
        "the execution finished after the restart",
      );
      expect(await fx.db.$queryRaw<unknown[]>`SELECT 1 FROM outside_calls WHERE request_id = ${request.id} AND kind = 'applied'`).toHaveLength(1);
      expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "grant.activated" } })).toBe(1);
      expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "integration.performed" } })).toBe(1);
    } finally {
      second.kill("SIGTERM");
    }
  });
});

describe("the sweep", () => {
  it("queues one job per request however often it runs, and none while one is waiting", async () => {
    for (const w of workers.splice(0)) await w.stop({ graceful: true, wait: true });
    const request = await engine.createRequest(alice, "fault-grant", input(900));
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "go" });
    await fx.db.$executeRaw`UPDATE "AccessRequest" SET "updatedAt" = now() - interval '5 minutes' WHERE id = ${request.id}`;
    for (let i = 0; i < 3; i++) await engine.sweepExpiredGrants();
    const jobs = await fx.db.$queryRaw<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'request-execute' AND singleton_key = ${request.id} AND state IN ('created', 'retry')`;
    expect(jobs[0]!.n).toBe(1);
  });
});
