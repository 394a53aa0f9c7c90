import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { statementsOf, transactionStatements } from "../helpers/statements";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The request lifecycle's hot path reads and writes through the driver (lib/db/sql.ts,
 * lib/approvals/rows.ts) rather than Prisma's client. What it reads must be what Prisma
 * would have given, column for column (so a column added to the schema cannot go missing or
 * change type on this path), in the transaction's own connection when in one, and with times
 * as UTC whatever the process's time zone.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let rows: typeof import("@/lib/approvals/rows");
let sqlOf: typeof import("@/lib/db/sql");
let writer: typeof import("@/lib/approvals/transition");
let inTransaction: typeof import("@/lib/approvals/lifecycle").inTransaction;
let alice: Principal;
let bob: Principal;
const zone = process.env.TZ;
const SYSTEM = { type: "system" as const, email: "latchkey" };

beforeAll(async () => {
  // Far from UTC, so a time read or written as local time is hours off.
  process.env.TZ = "Pacific/Kiritimati";
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  rows = await import("@/lib/approvals/rows");
  sqlOf = await import("@/lib/db/sql");
  writer = await import("@/lib/approvals/transition");
  ({ inTransaction } = await import("@/lib/approvals/lifecycle"));
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  process.env.TZ = zone;
  await fx?.close();
});

/** A request with every kind of column filled: JSON, text arrays, times, a decision, a credential. */
async function approvedRequest() {
  const made = await engine.createRequest(alice, "temporary-access", validInput({ role: "write", justification: "Rows test: INC-77 needs write access" }));
  await engine.decide(bob, { requestId: made.id, decision: "approve", comment: "rows look right" });
  return made.id;
}

describe("the lifecycle's rows read through the driver", () => {
  it("are Prisma's rows, column for column and type for type: a decision's request, requester, decisions and parties' owners", async () => {
    const id = await approvedRequest();
    const prismaRequest = await fx.db.accessRequest.findUniqueOrThrow({ where: { id } });
    expect(prismaRequest.activatedAt).toBeInstanceOf(Date);
    // A service identity Bob owns has decided too, so the parties' owners are not empty.
    const robot = await fx.db.user.create({ data: { email: "robot@example.com", name: "Robot", kind: "service", groups: ["engineering-leads"] } });
    await fx.db.serviceOwner.create({ data: { serviceId: robot.id, ownerId: bob.id, addedById: bob.id } });
    await fx.db.approval.create({
      data: { requestId: id, approverId: robot.id, stage: 0, approverGroups: robot.groups, decision: "approve", comment: "robot" },
    });
    const read = await inTransaction(async (tx) => {
      const request = await rows.lockedRequestRow(tx, id);
      return { request, ...(await rows.decisionContext(tx, request!, bob.id)) };
    });
    expect(read.request).toStrictEqual(prismaRequest);
    expect(read.requester).toStrictEqual(await fx.db.user.findUniqueOrThrow({ where: { id: alice.id } }));
    const prismaDecisions = await fx.db.approval.findMany({
      where: { requestId: id },
      include: { approver: { select: { email: true, name: true } } },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
    });
    expect(prismaDecisions).toHaveLength(2);
    expect(read.decisions).toStrictEqual(prismaDecisions);
    expect(read.owners).toEqual([{ serviceId: robot.id, ownerId: bob.id }]);
  });

  it("get ids from the database, a random UUID without dashes (letters and digits, as before), whichever path inserts them", async () => {
    const uuid = /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/;
    const id = await approvedRequest();
    expect(id).toMatch(uuid);
    const [decision] = await fx.db.approval.findMany({ where: { requestId: id } });
    expect(decision!.id).toMatch(uuid);
    const carol = await fx.user("carol@example.com", ["engineering-leads"]);
    const pending = (await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }))).id;
    const byPrisma = await fx.db.approval.create({ data: { requestId: pending, approverId: carol.id, decision: "approve", comment: "by Prisma" } });
    expect(byPrisma.id).toMatch(uuid);
  });

  it("give the request page's one-statement read what Prisma's include gives, with a credential and without", async () => {
    const carol = await fx.user("carol@example.com", ["engineering-leads"]);
    const approved = await approvedRequest();
    const pending = (await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }))).id;
    // Two decisions in order (the second a rejection) on a third request.
    const twoStage = (await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }))).id;
    await fx.db.approval.create({
      data: { requestId: twoStage, approverId: carol.id, stage: 0, approverGroups: carol.groups, decision: "approve", comment: "one" },
    });
    await engine.decide(bob, { requestId: twoStage, decision: "reject", comment: "two" });
    for (const id of [approved, pending, twoStage]) {
      const prisma = await fx.db.accessRequest.findUniqueOrThrow({
        where: { id },
        include: {
          requester: { select: { id: true, email: true, name: true } },
          decisions: { include: { approver: { select: { email: true, name: true } } }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] },
          credential: { select: { id: true, kid: true, issuedAt: true, expiresAt: true, revealedAt: true, revokedAt: true, sealedToken: true } },
        },
      });
      expect((await rows.viewedRequestRow(fx.db, id, bob.id))!.request).toStrictEqual(prisma);
    }
    expect((await rows.viewedRequestRow(fx.db, approved, bob.id))!.request.credential).not.toBeNull();
    expect((await rows.viewedRequestRow(fx.db, twoStage, bob.id))!.request.decisions.map((d) => d.comment)).toEqual(["one", "two"]);
    expect(await rows.viewedRequestRow(fx.db, "no-such-request", bob.id)).toBeNull();
  });

  it("give who could approve a waiting request in the same statement: approvers of its stages' groups outside the requester's party, not request-only; no one once it is decided", async () => {
    const pending = await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }));
    const groups = (pending.stages as { groups: string[] }[]).flatMap((st) => st.groups);
    // Each left out for one reason: request-only, in the requester's party (a service identity Alice owns), an approver of no stage's group.
    const quiet = await fx.user("quiet@example.com", ["engineering-leads"]);
    await fx.db.user.update({ where: { id: quiet.id }, data: { requestOnly: true } });
    const robot = await fx.db.user.create({
      data: { email: "alices-robot@example.com", kind: "service", groups: ["engineering-leads"], roles: ["approver"] },
    });
    await fx.db.serviceOwner.create({ data: { serviceId: robot.id, ownerId: alice.id, addedById: alice.id } });
    await fx.db.user.upsert({
      where: { email: "elsewhere@example.com" },
      create: { email: "elsewhere@example.com", groups: ["finance-approvers"], roles: ["approver"] },
      update: {},
    });
    const expected = (
      await fx.db.user.findMany({ where: { roles: { has: "approver" }, requestOnly: false, groups: { hasSome: groups } }, orderBy: { email: "asc" } })
    )
      .filter((u) => u.id !== robot.id)
      .map((u) => ({ id: u.id, email: u.email, groups: u.groups }));
    expect(expected.map((u) => u.email)).toContain("bob@example.com");
    const { value: viewed, texts } = await statementsOf(() => rows.viewedRequestRow(fx.db, pending.id, bob.id));
    expect(texts).toHaveLength(1);
    // The API's answer reads nothing more for it: one statement for the whole request, its stages and who could approve each.
    const { getRequestView } = await import("@/lib/approvals/queries");
    const { value: view, texts: viewTexts } = await statementsOf(() => getRequestView(bob, pending.id, { timeline: false }));
    expect(viewTexts).toHaveLength(1);
    expect(view.stageViews.flatMap((st) => st.eligible)).toEqual(expected.map((u) => u.email));
    expect(viewed!.approvers).toStrictEqual(expected);
    expect(viewed!.approvers.map((u) => u.email)).not.toContain("quiet@example.com");
    expect(viewed!.approvers.map((u) => u.email)).not.toContain("alices-robot@example.com");
    expect(viewed!.approvers.map((u) => u.email)).not.toContain("elsewhere@example.com");
    await engine.decide(bob, { requestId: pending.id, decision: "reject", comment: "no one approves this now" });
    expect((await rows.viewedRequestRow(fx.db, pending.id, bob.id))!.approvers).toEqual([]);
  });

  it("reads and writes times as UTC in a process whose time zone is not", async () => {
    expect(new Date(Date.UTC(2026, 0, 1)).getTimezoneOffset()).not.toBe(0);
    const id = await approvedRequest();
    const at = new Date("2026-11-30T08:15:30.123Z");
    const request = await fx.db.accessRequest.findUniqueOrThrow({ where: { id } });
    const written = await inTransaction((tx) =>
      writer.transition(tx, request, "revoked", { actor: SYSTEM, action: "grant.revoked", patch: { endedAt: at, expiresAt: at } }),
    );
    expect(written.expiresAt).toEqual(at);
    // Prisma reads what the driver wrote as the same instant, and the database holds it as UTC text.
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id } })).expiresAt).toEqual(at);
    const [text] = await fx.db.$queryRaw<{ t: string }[]>`SELECT "expiresAt"::text AS t FROM "AccessRequest" WHERE id = ${id}`;
    expect(text!.t).toBe("2026-11-30 08:15:30.123");
  });
});

describe("the status writer's statements through the driver", () => {
  it("write plain values and updatedAt over the status read, return Prisma's row, and nothing over another status", async () => {
    const made = await engine.createRequest(alice, "temporary-access", validInput());
    expect(made).toStrictEqual(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: made.id } }));
    await new Promise((r) => setTimeout(r, 5));
    const ended = new Date();
    const written = await inTransaction((tx) =>
      writer.transition(tx, made, "cancelled", {
        actor: SYSTEM,
        action: "request.cancelled",
        patch: { endedAt: ended, failureReason: null, undoPending: false },
      }),
    );
    expect(written).toStrictEqual(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: made.id } }));
    expect(written).toMatchObject({ status: "cancelled", endedAt: ended, failureReason: null, undoPending: false });
    expect(written.updatedAt.getTime()).toBeGreaterThan(made.updatedAt.getTime());
    // The row no longer holds "pending": nothing is written, and the caller is told so.
    await expect(inTransaction((tx) => writer.transition(tx, made, "expired", { actor: SYSTEM, action: "request.timed_out" }))).rejects.toMatchObject({
      code: "conflict",
    });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: made.id } })).status).toBe("cancelled");
  });

  it("hand what is not a plain value (a Prisma operation) to Prisma's client", async () => {
    const made = await engine.createRequest(alice, "temporary-access", validInput());
    const written = await inTransaction((tx) =>
      writer.transition(tx, made, "cancelled", { actor: SYSTEM, action: "request.cancelled", patch: { currentStage: { increment: 1 } } }),
    );
    expect(written).toMatchObject({ status: "cancelled", currentStage: made.currentStage + 1 });
  });
});

describe("the audit events' ids, taken by the request's write", () => {
  const nextvalAlone = (texts: string[]) => texts.filter((t) => /^SELECT nextval\('"AuditEvent_id_seq"'\)/.test(t.trim()));
  const eventsOf = (requestId: string) => fx.db.auditEvent.findMany({ where: { requestId }, orderBy: { id: "asc" } });

  it("come with the write, so making and approving a request send no statement for them; in the order recorded, times rising with ids, and the chain has no gaps", async () => {
    const made = await transactionStatements(() => engine.createRequest(alice, "temporary-access", validInput({ role: "write" })));
    // BEGIN, the request's insert (which takes its event's id), the event with its jobs, COMMIT.
    expect(made.texts).toHaveLength(4);
    expect(nextvalAlone(made.texts)).toEqual([]);
    const approved = await transactionStatements(() => engine.decide(bob, { requestId: made.value.id, decision: "approve", comment: "ids ahead" }));
    expect(nextvalAlone(approved.texts)).toEqual([]);
    const events = await eventsOf(made.value.id);
    expect(events.map((e) => e.action)).toEqual(["request.created", "request.approved", "request.executing", "credential.issued", "grant.activated"]);
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.id).toBeGreaterThan(events[i - 1]!.id);
      expect(events[i]!.occurredAt.getTime()).toBeGreaterThanOrEqual(events[i - 1]!.occurredAt.getTime());
    }
    // Each sealed over the id and time it was written with, and linked by the chainer like any other.
    const { chainBatch } = await import("@/lib/audit/chainer");
    const { walkChain } = await import("@/lib/audit/verify");
    while (((await chainBatch()) ?? 0) > 0);
    // The chainer links only events whose own seal checks out: none is left unchained.
    expect(await walkChain()).toMatchObject({ ok: true, outcome: "intact", unchainedEvents: 0 });
  });

  it("are taken by a statement of their own for events recorded past what the write took, still in order", async () => {
    const { recordEvent } = await import("@/lib/audit/record");
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const moved = await transactionStatements(() =>
      inTransaction(async (tx) => {
        const cancelled = await writer.transition(tx, request, "cancelled", { actor: SYSTEM, action: "request.cancelled", patch: { endedAt: new Date() } });
        // Two more after the write, which took ids for what was recorded by then (one) and no more.
        await recordEvent(tx, { actor: SYSTEM, action: "probe.after-write", requestId: request.id, data: { n: 1 } });
        await recordEvent(tx, { actor: SYSTEM, action: "probe.after-write", requestId: request.id, data: { n: 2 } });
        return cancelled;
      }),
    );
    expect(nextvalAlone(moved.texts)).toHaveLength(1);
    const events = (await eventsOf(request.id)).slice(-3);
    expect(events.map((e) => [e.action, (e.data as { n?: number }).n])).toEqual([
      ["request.cancelled", undefined],
      ["probe.after-write", 1],
      ["probe.after-write", 2],
    ]);
    expect(events[1]!.id).toBeGreaterThan(events[0]!.id);
    expect(events[2]!.id).toBeGreaterThan(events[1]!.id);
  });
});

describe("statements in a transaction through the driver", () => {
  it("run on the transaction's own connection: they see its writes, and roll back with it", async () => {
    const made = await engine.createRequest(alice, "temporary-access", validInput());
    await expect(
      inTransaction(async (tx) => {
        const [prisma] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
        const [driver] = await sqlOf.sqlRows<{ pid: number }>(tx, sqlOf.sql`SELECT pg_backend_pid() AS pid`);
        expect(driver!.pid).toBe(prisma!.pid);
        await tx.accessRequest.update({ where: { id: made.id }, data: { justification: "changed in the transaction" } });
        expect((await rows.lockedRequestRow(tx, made.id))!.justification).toBe("changed in the transaction");
        await sqlOf.sqlRun(tx, sqlOf.sql`UPDATE "AccessRequest" SET "ticketKey" = 'INC-1' WHERE id = ${made.id}`);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: made.id } })).toMatchObject({ justification: made.justification, ticketKey: null });
  });

  it("take the request's row lock first: a decision waits while another transaction holds it, then decides", async () => {
    const made = await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }));
    let locked!: () => void;
    let release!: () => void;
    const holding = new Promise<void>((r) => (locked = r));
    const released = new Promise<void>((r) => (release = r));
    const holder = fx.db.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT id FROM "AccessRequest" WHERE id = ${made.id} FOR UPDATE`;
        locked();
        await released;
      },
      { timeout: 20_000 },
    );
    await holding;
    const deciding = engine.decide(bob, { requestId: made.id, decision: "approve", comment: "after the lock" });
    const waiting = async () =>
      (
        await fx.db.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM "AccessRequest" WHERE id = $1 FOR UPDATE'`
      )[0]!.n;
    for (let i = 0; i < 100 && (await waiting()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await waiting()).toBe(1);
    expect(await fx.db.approval.count({ where: { requestId: made.id } })).toBe(0);
    release();
    await holder;
    expect((await deciding).status).toBe("active");
  });

  it("refuse to run once the transaction has ended under its code (a time-out): nothing reaches the database outside it", async () => {
    const made = await engine.createRequest(alice, "temporary-access", validInput());
    const late = fx.db.$transaction(
      async (tx) => {
        await sqlOf.sqlRows(tx, sqlOf.sql`SELECT id FROM "AccessRequest" WHERE id = ${made.id} FOR UPDATE`);
        // Prisma rolls the transaction back at its time limit while this code still runs.
        await new Promise((r) => setTimeout(r, 800));
        await sqlOf.sqlRows(tx, sqlOf.sql`UPDATE "AccessRequest" SET "ticketKey" = 'AFTER-THE-END' WHERE id = ${made.id} RETURNING id`);
      },
      { timeout: 300 },
    );
    await expect(late).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 200));
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: made.id } })).ticketKey).toBeNull();
  });

  it("keep working after a migration adds a column to the tables they read (they name their columns)", async () => {
    const decideOne = async () => {
      const made = await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }));
      return (await engine.decide(bob, { requestId: made.id, decision: "approve", comment: "columns" })).status;
    };
    // Each text sent twice or more is prepared, on whichever connections the pool gives.
    for (let i = 0; i < 3; i++) expect(await decideOne()).toBe("active");
    await fx.db.$executeRawUnsafe(`ALTER TABLE "AccessRequest" ADD COLUMN "addedLater" integer`);
    await fx.db.$executeRawUnsafe(`ALTER TABLE "User" ADD COLUMN "addedLater" integer`);
    try {
      for (let i = 0; i < 3; i++) expect(await decideOne()).toBe("active");
    } finally {
      await fx.db.$executeRawUnsafe(`ALTER TABLE "AccessRequest" DROP COLUMN "addedLater"`);
      await fx.db.$executeRawUnsafe(`ALTER TABLE "User" DROP COLUMN "addedLater"`);
    }
  });
});

describe("a request's view returned by its write (the API's answers to making and deciding a request)", () => {
  /** The answer as the call gives it (from its write, when there was one) and as a read after the commit gives it. */
  const both = async (who: Principal, id: string, view: import("@/lib/approvals/rows").WriteView) => {
    const { requestDetail } = await import("@/lib/api/views");
    return { given: await requestDetail(who, id, view), read: await requestDetail(who, id) };
  };
  const viewOf = (who: Principal) => ({ viewerId: who.id }) as import("@/lib/approvals/rows").WriteView;

  /** A request of `requester`'s, decided by `approver`, who asks for its view at the write. */
  const decidedBy = async (approver: Principal, requester: Principal, decision: "approve" | "reject") => {
    const made = await engine.createRequest(requester, "temporary-access", validInput({ role: "write" }));
    const view = viewOf(approver);
    await engine.decide(approver, { requestId: made.id, decision, comment: `views: ${decision}` }, undefined, view);
    return { id: made.id, view };
  };

  it("is the request as read after the commit: made, approved and issued, rejected, auto-approved, and an extension that replaces its grant", async () => {
    const carol = await fx.user("carol-views@example.com", ["engineering"]);
    const cases: Array<[string, Principal, () => Promise<{ id: string; view: ReturnType<typeof viewOf> }>]> = [
      [
        "made, waiting",
        alice,
        async () => {
          const view = viewOf(alice);
          return { id: (await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }), { view })).id, view };
        },
      ],
      ["approved, with its credential", bob, () => decidedBy(bob, alice, "approve")],
      ["rejected", bob, () => decidedBy(bob, carol, "reject")],
      [
        "auto-approved when made",
        alice,
        async () => {
          const view = viewOf(alice);
          return { id: (await engine.createRequest(alice, "temporary-access", validInput(), { view })).id, view };
        },
      ],
      [
        "an extension approved, which ends the grant it extends in the same transaction",
        bob,
        async () => {
          const parent = await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }));
          await engine.decide(bob, { requestId: parent.id, decision: "approve", comment: "views: parent" });
          const extension = await engine.requestExtension(alice, { requestId: parent.id, durationMinutes: 60, justification: "Still investigating INC-1234" });
          const view = viewOf(bob);
          await engine.decide(bob, { requestId: extension.id, decision: "approve", comment: "views: extension" }, undefined, view);
          return { id: extension.id, view };
        },
      ],
    ];
    for (const [name, who, act] of cases) {
      const { id, view } = await act();
      // Given by the write itself, not read again.
      expect(view.viewed?.request.id, name).toBe(id);
      const { given, read } = await both(who, id, view);
      expect(given, name).toStrictEqual(read);
    }
  });

  it("is what the API's own calls answer with (madeRequestDetail, decidedRequestDetail): equal to a read after the commit", async () => {
    const { madeRequestDetail, decidedRequestDetail, requestDetail } = await import("@/lib/api/views");
    const made = await madeRequestDetail(alice, "temporary-access", validInput({ role: "write" }));
    expect(made).toStrictEqual(await requestDetail(alice, made.id));
    expect(made.status).toBe("pending");
    const approved = await decidedRequestDetail(bob, { requestId: made.id, decision: "approve", comment: "views: through the API's call" });
    expect(approved).toStrictEqual(await requestDetail(bob, made.id));
    expect(approved).toMatchObject({ status: "active", credential: { revealable: true } });
  });

  it("is dropped when a later write of the request in the same transaction goes through Prisma's client", async () => {
    const made = await engine.createRequest(alice, "temporary-access", validInput({ role: "write" }));
    const view = { ...viewOf(alice), requestId: made.id };
    await inTransaction(async (tx) => {
      rows.watchWrites(tx, view);
      const moved = await writer.transition(tx, made, "cancelled", { actor: SYSTEM, action: "request.cancelled", patch: { endedAt: new Date() } });
      expect(view.viewed?.request).toMatchObject({ id: made.id, status: "cancelled", currentStage: made.currentStage });
      // Not a plain value: Prisma writes it, and the view returned above no longer shows the row.
      await sqlOf.sqlRun(tx, sqlOf.sql`UPDATE "AccessRequest" SET status = 'pending' WHERE id = ${made.id}`);
      await writer.transition(tx, { ...moved, status: "pending" }, "cancelled", {
        actor: SYSTEM,
        action: "request.cancelled",
        patch: { currentStage: { increment: 1 } },
      });
      expect(view.viewed).toBeUndefined();
    });
  });

  it("is read again after the commit when the request's last write did not return it (a stage passed by Prisma's update)", async () => {
    const dave = await fx.user("dave-views@example.com", ["platform-admins"]);
    const made = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "staged", durationMinutes: 30 }));
    const view = viewOf(bob);
    const passed = await engine.decide(bob, { requestId: made.id, decision: "approve", comment: "views: stage one" }, undefined, view);
    expect(passed).toMatchObject({ status: "pending", currentStage: 1 });
    expect(view.viewed).toBeUndefined();
    const { given, read } = await both(bob, made.id, view);
    expect(given).toStrictEqual(read);
    expect(given.stages.map((s) => s.state)).toEqual(["passed", "current"]);
    // An approval recorded while the stage waits for another group writes no request row: read again too.
    const recorded = viewOf(dave);
    await engine.decide(dave, { requestId: made.id, decision: "approve", comment: "views: stage two, first group" }, undefined, recorded);
    expect(recorded.viewed).toBeUndefined();
    const waiting = await both(dave, made.id, recorded);
    expect(waiting.given).toStrictEqual(waiting.read);
    // The approval that completes the stage writes the request, and is answered from that write.
    const sam = await fx.user("sam-views@example.com", ["security"]);
    const last = viewOf(sam);
    await engine.decide(sam, { requestId: made.id, decision: "approve", comment: "views: stage two, second group" }, undefined, last);
    expect(last.viewed?.request).toMatchObject({ id: made.id, status: "active" });
    const done = await both(sam, made.id, last);
    expect(done.given).toStrictEqual(done.read);
    expect(done.given.decisions).toHaveLength(3);
  });
});
