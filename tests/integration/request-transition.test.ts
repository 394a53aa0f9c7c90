import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
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
