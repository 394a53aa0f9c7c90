import { randomBytes } from "node:crypto";
import pg from "pg";
import { sql } from "../helpers/database";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/** "Database access" end to end without the UI: engine, queue worker, and a real target database. */
const admin = inject("pgAdminUrl");
const dbName = `latchkey_ledger_${randomBytes(5).toString("hex")}`;
const ledgerUrl = (() => {
  const u = new URL(admin);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal, bob: Principal;

const input = (overrides: Record<string, unknown> = {}) => validInput({ targetId: "ledger-db", role: "read", durationMinutes: 30, ...overrides });
const status = async (id: string) => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id } })).status;

beforeAll(async () => {
  await sql(admin, `CREATE DATABASE "${dbName}"`);
  await sql(ledgerUrl, "CREATE TABLE entries (id serial PRIMARY KEY, amount int); INSERT INTO entries (amount) VALUES (7);");
  process.env.TEST_LEDGER_DB_URL = ledgerUrl;
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  await sql(admin, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
});

describe("database access", () => {
  it("approval queues the execution; the worker creates an expiring login shown once; expiry cuts its session and drops it", async () => {
    const { startWorker } = await import("@/lib/jobs/worker");
    const request = await engine.createRequest(alice, "database-access", input());
    const approved = await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(approved.status).toBe("executing");
    const worker = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    try {
      await expect.poll(() => status(request.id), { timeout: 20_000, interval: 250 }).toBe("active");
      const active = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
      const { token: connectionString } = await engine.revealCredential(alice, request.id);
      await expect(engine.revealCredential(alice, request.id)).rejects.toMatchObject({ code: "conflict" });
      const role = new URL(connectionString).username;
      const [info] = (await sql(admin, "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", [role])).rows;
      expect(Math.abs(new Date(info.rolvaliduntil).getTime() - active.expiresAt!.getTime())).toBeLessThan(1000);

      const session = new pg.Client({ connectionString });
      session.on("error", () => undefined);
      await session.connect();
      expect((await session.query("SELECT amount FROM entries")).rows).toEqual([{ amount: 7 }]);
      await expect(session.query("DELETE FROM entries")).rejects.toThrow(/permission denied/);

      expect(await engine.expireGrant(request.id, new Date(active.expiresAt!.getTime() + 1000))).toBe("expired");
      await expect
        .poll(async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).undoPending, { timeout: 20_000, interval: 250 })
        .toBe(false);
      await expect(session.query("SELECT 1")).rejects.toThrow();
      await session.end().catch(() => undefined);
      expect((await sql(admin, "SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rowCount).toBe(0);
      const actions = (await fx.db.auditEvent.findMany({ where: { requestId: request.id }, orderBy: { id: "asc" } })).map((e) => e.action);
      expect(actions).toEqual([
        "request.created",
        "request.approved",
        "request.executing",
        "integration.performed",
        "grant.activated",
        "credential.revealed",
        "grant.expired",
        "integration.undone",
      ]);
    } finally {
      await worker.stop({ graceful: false, wait: true });
    }
  });

  it("a person the directory removes from the requesting group loses the login: its open session is cut and the role dropped, with the reason audited", async () => {
    const { startWorker } = await import("@/lib/jobs/worker");
    const { applyDirectoryChange } = await import("@/lib/identity/directory");
    const omar = await fx.user("omar@example.com", ["engineering"]);
    const request = await engine.createRequest(omar, "database-access", input());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    const worker = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    try {
      await expect.poll(() => status(request.id), { timeout: 20_000, interval: 250 }).toBe("active");
      const { token: connectionString } = await engine.revealCredential(omar, request.id);
      const role = new URL(connectionString).username;
      const session = new pg.Client({ connectionString });
      session.on("error", () => undefined);
      await session.connect();
      expect((await session.query("SELECT amount FROM entries")).rows).toEqual([{ amount: 7 }]);

      expect(await applyDirectoryChange({ userId: omar.id, groups: ["oncall"], source: "scim" })).toMatchObject({ revokedGrants: 1 });
      expect(await status(request.id)).toBe("revoked");
      // The worker's undo job, queued in the revocation's transaction, cuts the session and drops the role.
      await expect
        .poll(async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).undoPending, { timeout: 20_000, interval: 250 })
        .toBe(false);
      await expect(session.query("SELECT 1")).rejects.toThrow();
      await session.end().catch(() => undefined);
      expect((await sql(admin, "SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rowCount).toBe(0);
      const revoked = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "grant.revoked" } });
      expect(revoked.data).toMatchObject({ reason: "directory: removed from engineering" });
    } finally {
      await worker.stop({ graceful: false, wait: true });
    }
  });

  it("the worker acts the moment an execution or a clean-up commits, not at its next poll; of two instances exactly one acts", async () => {
    const { startWorker } = await import("@/lib/jobs/worker");
    // Both instances poll every 30 s after their first fetch: only the wake-up sent at commit can explain an action within seconds.
    const workers = [await startWorker(fx.url, { pollingIntervalSeconds: 30 }), await startWorker(fx.url, { pollingIntervalSeconds: 30 })];
    try {
      await new Promise((r) => setTimeout(r, 500));
      for (let round = 0; round < 3; round++) {
        const request = await engine.createRequest(alice, "database-access", input());
        const approvedAt = Date.now();
        expect((await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" })).status).toBe("executing");
        await expect.poll(() => status(request.id), { timeout: 10_000, interval: 20 }).toBe("active");
        expect(Date.now() - approvedAt).toBeLessThan(5_000);
        const { token: connectionString } = await engine.revealCredential(alice, request.id);
        const session = new pg.Client({ connectionString });
        session.on("error", () => undefined);
        await session.connect();
        await engine.revokeGrant(alice, { requestId: request.id, reason: "done early" });
        const revokedAt = Date.now();
        await expect
          .poll(
            () =>
              session.query("SELECT 1").then(
                () => "open",
                () => "ended",
              ),
            { timeout: 10_000, interval: 20 },
          )
          .toBe("ended");
        expect(Date.now() - revokedAt).toBeLessThan(5_000);
        await session.end().catch(() => undefined);
        await expect
          .poll(async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).undoPending, { timeout: 10_000, interval: 20 })
          .toBe(false);
        const actions = (await fx.db.auditEvent.findMany({ where: { requestId: request.id }, orderBy: { id: "asc" } })).map((e) => e.action);
        expect(actions.filter((a) => a === "integration.performed")).toHaveLength(1);
        expect(actions.filter((a) => a === "integration.undone")).toHaveLength(1);
      }
      // The connections that hear the wake-ups are cut: each worker listens again on a new one within seconds, and acts at once again.
      const wakeConnections = `SELECT pid FROM pg_stat_activity WHERE application_name = 'latchkey-worker-wake' AND datname = current_database()`;
      const cut = await sql(fx.url, `SELECT pg_terminate_backend(pid) FROM (${wakeConnections}) w`);
      expect(cut.rowCount).toBe(2);
      await expect.poll(async () => (await sql(fx.url, wakeConnections)).rowCount, { timeout: 10_000, interval: 100 }).toBe(2);
      const again = await engine.createRequest(alice, "database-access", input());
      const approvedAt = Date.now();
      await engine.decide(bob, { requestId: again.id, decision: "approve", comment: "" });
      await expect.poll(() => status(again.id), { timeout: 10_000, interval: 20 }).toBe("active");
      expect(Date.now() - approvedAt).toBeLessThan(5_000);
      await engine.revokeGrant(alice, { requestId: again.id, reason: "done" });
      await expect
        .poll(async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: again.id } })).undoPending, { timeout: 10_000, interval: 20 })
        .toBe(false);
    } finally {
      for (const worker of workers) await worker.stop({ graceful: false, wait: true });
    }
  });

  it("an unreachable database is retried with the error shown, then fails and is cleaned up", async () => {
    const request = await engine.createRequest(alice, "database-access", input());
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    process.env.TEST_LEDGER_DB_URL = "postgresql://postgres@127.0.0.1:1/unreachable";
    try {
      await expect(engine.performQueued(request.id, false)).rejects.toThrow();
      const retrying = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
      expect(retrying.status).toBe("executing");
      expect(retrying.failureReason).toMatch(/^Last attempt failed, retrying: .*ECONNREFUSED/);
      expect(await engine.performQueued(request.id, true)).toBe("failed");
    } finally {
      process.env.TEST_LEDGER_DB_URL = ledgerUrl;
    }
    const failed = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
    expect(failed).toMatchObject({ status: "failed", undoPending: true });
    expect(await engine.undoQueued(request.id)).toBe("undone");
    expect(await engine.undoQueued(request.id)).toBe("nothing-to-do");
    const actions = (await fx.db.auditEvent.findMany({ where: { requestId: request.id }, orderBy: { id: "asc" } })).map((e) => e.action);
    expect(actions.slice(-3)).toEqual(["request.execution_retry", "request.failed", "integration.undone"]);
  });

  it("a write grant can write; early revocation drops the role; a missing connection setting fails at once", async () => {
    const request = await engine.createRequest(alice, "database-access", input({ role: "write" }));
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await engine.performQueued(request.id, false)).toBe("active");
    const { token } = await engine.revealCredential(alice, request.id);
    expect((await sql(token, "INSERT INTO entries (amount) VALUES (3) RETURNING amount")).rows).toEqual([{ amount: 3 }]);
    const { instanceMetricsText } = await import("@/lib/observability/metrics");
    const revocations = async () =>
      Number((await instanceMetricsText()).match(/^latchkey_revocation_latency_seconds_count\{workflow="database-access"\} (\d+)$/m)?.[1] ?? 0);
    const before = await revocations();
    await engine.revokeGrant(alice, { requestId: request.id, reason: "done" });
    expect(await engine.undoQueued(request.id)).toBe("undone");
    expect((await sql(admin, "SELECT 1 FROM pg_roles WHERE rolname = $1", [new URL(token).username])).rowCount).toBe(0);
    // The worker that cleaned up counts the time from the grant's end in its own revocation latency series.
    expect(await revocations()).toBe(before + 1);

    const next = await engine.createRequest(alice, "database-access", input());
    await engine.decide(bob, { requestId: next.id, decision: "approve", comment: "" });
    delete process.env.TEST_LEDGER_DB_URL;
    try {
      expect(await engine.performQueued(next.id, false)).toBe("failed");
    } finally {
      process.env.TEST_LEDGER_DB_URL = ledgerUrl;
    }
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: next.id } })).failureReason).toBe(
      "TEST_LEDGER_DB_URL is not set, so Latchkey cannot reach ledger database.",
    );
  });
});
