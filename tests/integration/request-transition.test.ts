import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { transactionStatements } from "../helpers/statements";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The one writer of a request's status (lib/approvals/transition.ts), on its own: a move is
 * checked against the state machine, written only over the status the caller read (a change
 * made meanwhile is refused, not overwritten), audited, and its jobs queued, all or nothing.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let writer: typeof import("@/lib/approvals/transition");
let inTransaction: typeof import("@/lib/approvals/lifecycle").inTransaction;
let alice: Principal;
const SYSTEM = { type: "system" as const, email: "latchkey" };

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  writer = await import("@/lib/approvals/transition");
  ({ inTransaction } = await import("@/lib/approvals/lifecycle"));
  alice = await fx.user("alice@example.com", ["engineering"]);
});
afterAll(() => fx?.close());

const jobsOf = (requestId: string) =>
  fx.db.$queryRaw<{ name: string }[]>`SELECT name FROM pgboss.job WHERE singleton_key = ${requestId} AND state = 'created' ORDER BY name`;
const eventsOf = (requestId: string) =>
  fx.db.auditEvent.findMany({ where: { requestId }, orderBy: { id: "asc" }, select: { action: true, fromStatus: true, toStatus: true } });

describe("the status writer", () => {
  it("writes a move and its audit event in the caller's transaction", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const moved = await inTransaction((tx) =>
      writer.transition(tx, request, "cancelled", { actor: SYSTEM, action: "request.cancelled", patch: { endedAt: new Date() } }),
    );
    expect(moved).toMatchObject({ id: request.id, status: "cancelled" });
    expect(moved.endedAt).toBeInstanceOf(Date);
    expect((await eventsOf(request.id)).at(-1)).toEqual({ action: "request.cancelled", fromStatus: "pending", toStatus: "cancelled" });
  });

  it("refuses a move the state machine does not allow, and writes nothing", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const before = await eventsOf(request.id);
    await expect(inTransaction((tx) => writer.transition(tx, request, "active", { actor: SYSTEM, action: "grant.activated" }))).rejects.toMatchObject({
      code: "conflict",
      message: "This request is pending; it cannot become active.",
    });
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({ status: "pending" });
    expect(await eventsOf(request.id)).toEqual(before);
  });

  it("refuses to overwrite a change made since the caller read the status: no row, event or job of its own is left", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    // Another instance cancels it after this caller read it as pending (the caller took no row lock).
    await engine.cancelRequest(alice, request.id);
    const before = { events: await eventsOf(request.id), jobs: await jobsOf(request.id) };
    await expect(
      inTransaction((tx) => writer.transition(tx, request, "expired", { actor: SYSTEM, action: "request.timed_out", patch: { endedAt: new Date() } })),
    ).rejects.toMatchObject({ code: "conflict", message: expect.stringContaining("changed meanwhile") });
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({ status: "cancelled" });
    expect(await eventsOf(request.id)).toEqual(before.events);
    expect(await jobsOf(request.id)).toEqual(before.jobs);
  });

  it("writes several moves as one update, each audited in order, and queues what the last state needs", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const expiresAt = new Date(Date.now() + 3_600_000);
    const written = await inTransaction(async (tx) => {
      const moves = new writer.Moves(request);
      await moves.to(tx, "approved", { actor: SYSTEM, action: "request.approved", patch: { decidedAt: new Date() } });
      await moves.to(tx, "executing", { actor: SYSTEM, action: "request.executing" });
      await moves.to(tx, "active", { actor: SYSTEM, action: "grant.activated", patch: { activatedAt: new Date(), expiresAt } });
      return moves.write(tx);
    });
    expect(written).toMatchObject({ status: "active", expiresAt });
    expect((await eventsOf(request.id)).slice(-3)).toEqual([
      { action: "request.approved", fromStatus: "pending", toStatus: "approved" },
      { action: "request.executing", fromStatus: "approved", toStatus: "executing" },
      { action: "grant.activated", fromStatus: "executing", toStatus: "active" },
    ]);
    expect((await jobsOf(request.id)).map((j) => j.name)).toEqual(expect.arrayContaining(["grant-expire", "notify-expiring"]));
  });
});

describe("the jobs a change queues", () => {
  /** pg-boss's columns of a request's expiry jobs (those these tests queue), all but the job's own id and times of insertion. */
  const jobRows = (requestId: string) =>
    fx.db.$queryRaw<({ name: string } & Record<string, unknown>)[]>`
      SELECT name, data, priority, state, retry_limit, retry_count, retry_delay, retry_backoff, start_after, singleton_on,
             expire_in::text AS expire_in, (keep_until - start_after)::text AS kept_for, dead_letter, policy
      FROM pgboss.job WHERE singleton_key = ${requestId} AND name IN ('grant-expire', 'notify-expiring') ORDER BY name`;
  const jobsFor = (requestId: string, at: Date) => [
    { queue: "grant-expire", requestId, at },
    { queue: "notify-expiring", requestId, at: new Date(at.getTime() - 60_000) },
  ];
  const event = (requestId: string) => ({ actor: SYSTEM, action: "probe.jobs", requestId, data: {} });

  it("ride in the statement that writes the transaction's audit events, with no statement of their own, and are pg-boss's own jobs column for column", async () => {
    const { queueInTransaction } = await import("@/lib/jobs/queue");
    const { recordEvent } = await import("@/lib/audit/record");
    const at = new Date(Date.now() + 3_600_000);
    const [alone, ridden, eventOnly] = await Promise.all([1, 2, 3].map(() => engine.createRequest(alice, "temporary-access", validInput())));
    const count = async (work: Parameters<typeof inTransaction>[0]) => (await transactionStatements(() => inTransaction(work))).texts.length;
    // With no audit event to ride in, pg-boss's statement is sent as pg-boss built it.
    await count((tx) => queueInTransaction(tx, jobsFor(alone!.id, at)));
    const withEventOnly = await count((tx) => recordEvent(tx, event(eventOnly!.id)));
    const withJobs = await count(async (tx) => {
      await recordEvent(tx, event(ridden!.id));
      await queueInTransaction(tx, jobsFor(ridden!.id, at));
    });
    expect(withJobs).toBe(withEventOnly);
    const expected = (await jobRows(alone!.id)).map((row) => ({ ...row, data: { requestId: ridden!.id } }));
    expect(expected.map((row) => row.name)).toEqual(["grant-expire", "notify-expiring"]);
    expect(await jobRows(ridden!.id)).toEqual(expected);
  });

  it("are written with the change or not at all: none when its transaction rolls back, and those queued after the events were written still are", async () => {
    const { queueInTransaction } = await import("@/lib/jobs/queue");
    const { recordEvent } = await import("@/lib/audit/record");
    const { beforeCommit } = await import("@/lib/db/after-commit");
    const at = new Date(Date.now() + 3_600_000);
    const [rolledBack, late] = await Promise.all([1, 2].map(() => engine.createRequest(alice, "temporary-access", validInput())));
    const before = await jobRows(rolledBack!.id);
    await expect(
      inTransaction(async (tx) => {
        await recordEvent(tx, event(rolledBack!.id));
        await queueInTransaction(tx, jobsFor(rolledBack!.id, at));
        throw new Error("the change fails after queueing its jobs");
      }),
    ).rejects.toThrow("the change fails");
    expect(await jobRows(rolledBack!.id)).toEqual(before);
    // Jobs queued on that transaction once it has ended are refused, as its statements are, not gathered for a commit that never comes.
    let ended: Parameters<typeof queueInTransaction>[0] | undefined;
    await expect(
      inTransaction(async (tx) => {
        ended = tx;
        await recordEvent(tx, event(rolledBack!.id));
        await queueInTransaction(tx, jobsFor(rolledBack!.id, at));
        throw new Error("rolled back with its jobs");
      }),
    ).rejects.toThrow("rolled back with its jobs");
    await expect(queueInTransaction(ended!, jobsFor(rolledBack!.id, at))).rejects.toMatchObject({ code: "P2028" });
    expect(await jobRows(rolledBack!.id)).toEqual(before);
    // A step that runs after the events' statement (which took the jobs queued so far) queues one more: it is written too.
    await inTransaction(async (tx) => {
      await recordEvent(tx, event(late!.id));
      await queueInTransaction(tx, [jobsFor(late!.id, at)[0]!]);
      beforeCommit(tx, () => queueInTransaction(tx, [jobsFor(late!.id, at)[1]!]));
    });
    expect((await jobRows(late!.id)).map((row) => row.name)).toEqual(["grant-expire", "notify-expiring"]);
  });

  it("ride along only in pg-boss's own shape of insert (another version of pg-boss is sent by itself), its parameters renumbered", async () => {
    const { jobsAsCommonTables } = await import("@/lib/jobs/queue");
    expect(jobsAsCommonTables({ text: "INSERT INTO pgboss.job (name) SELECT name FROM json_to_recordset($1) AS x(name text)", values: ["[]"] })).toBeNull();
    const carried = jobsAsCommonTables({
      text: " WITH defaults as ( SELECT $2 as a, $3::int as b ) INSERT INTO t SELECT $1, a FROM defaults ",
      values: ["x", "y", 3],
    });
    expect(carried!.text).toBe("defaults AS ( SELECT $1 as a, $2::int as b ), latchkey_jobs AS (INSERT INTO t SELECT $3, a FROM defaults)");
    expect(carried!.values).toEqual(["y", 3, "x"]);
  });
});
