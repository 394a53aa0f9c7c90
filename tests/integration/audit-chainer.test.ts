import { spawn } from "node:child_process";
import pg from "pg";
import type { PrismaClient } from "@prisma/client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The chainer that links committed audit events into the chain after their commit
 * (lib/audit/chainer.ts): events altered, inserted or copied before they are chained are named
 * by their own seals, and never linked; rows placed outside the chain are named and stop
 * nothing silently; a chainer kept from its lock says so; many writers committing out of order
 * give one gap-free chain with every event linked once; a chainer killed part-way loses
 * nothing and links nothing twice.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let verify: typeof import("@/lib/audit/verify");
let chainer: typeof import("@/lib/audit/chainer");
let record: typeof import("@/lib/audit/record");
let alice: Principal;

async function asSuperuser<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: fx.url });
  await client.connect();
  try {
    await client.query("SET session_replication_role = replica");
    return await work(client);
  } finally {
    await client.end();
  }
}

/** What the process writes to stderr (warnings and errors, one JSON object a line) while `work` runs. */
async function stderrOf(work: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    await work();
  } finally {
    process.stderr.write = write;
  }
  return lines.flatMap((l) => l.split("\n").filter(Boolean)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const chainHead = async () => fx.db.auditChainHead.findUniqueOrThrow({ where: { id: 1 } });

/** Every event has a place, the places run 1..n without a gap, and no event holds two. */
async function expectWholeChain() {
  expect(await fx.db.auditEvent.count({ where: { seq: null } })).toBe(0);
  const rows = await fx.db.auditEvent.findMany({ select: { id: true, seq: true }, orderBy: { seq: "asc" } });
  expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
  expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
  const head = await fx.db.auditChainHead.findUniqueOrThrow({ where: { id: 1 } });
  expect(head.lastSeq).toBe(BigInt(rows.length));
  expect(await verify.walkChain()).toMatchObject({ ok: true, outcome: "intact", unchainedEvents: 0 });
}

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  verify = await import("@/lib/audit/verify");
  chainer = await import("@/lib/audit/chainer");
  record = await import("@/lib/audit/record");
  alice = await fx.user("alice@example.com", ["engineering"]);
  await engine.createRequest(alice, "temporary-access", validInput());
  await chainer.chainAuditEvents();
});
afterAll(() => fx?.close());

describe("events not yet chained", () => {
  it("are counted with the oldest one's time, and linked by the next pass", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const waiting = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } });
    expect(waiting).toMatchObject({ seq: null, hash: null, prevHash: null });
    expect(waiting.seal).toMatch(/^[0-9a-f]{64}$/);
    const report = await verify.verifyAuditChain("manual");
    expect(report).toMatchObject({ ok: true, unchainedEvents: 1, oldestUnchainedAt: waiting.occurredAt });
    expect(await chainer.chainAuditEvents()).toBe(1);
    await expectWholeChain();
  });

  it("are named when altered, by their own seal, before the chainer gets to them", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } });
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com' WHERE id = $1`, [event.id]));
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      outcome: "altered",
      firstBadSeq: null,
      problem: `Event id ${event.id} (request.created), not yet chained, was altered: its content no longer matches its seal.`,
    });
    // The chainer does not launder it: it checks the seal first, and leaves the event out of the chain.
    await chainer.chainAuditEvents();
    expect(await fx.db.auditEvent.findUniqueOrThrow({ where: { id: event.id } })).toMatchObject({ seq: null, hash: null });
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      problem: expect.stringContaining(`Event id ${event.id} (request.created), not yet chained, was altered`),
    });
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "actorEmail" = $2 WHERE id = $1`, [event.id, event.actorEmail]));
    expect(await chainer.chainAuditEvents()).toBe(1);
    await expectWholeChain();
  });

  it("are named when inserted without a seal, or copied under another id", async () => {
    const [inserted] = await asSuperuser(async (c) =>
      (
        await c.query(
          `INSERT INTO "AuditEvent" ("occurredAt", "actorType", "actorEmail", action, data) VALUES (now(), 'human', 'mallory@example.com', 'request.approved', '{}') RETURNING id`,
        )
      ).rows.map((r) => r.id as string),
    );
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      problem: `Event id ${inserted} (request.approved), not yet chained, carries no seal: it was inserted.`,
    });
    await asSuperuser((c) => c.query(`DELETE FROM "AuditEvent" WHERE id = $1`, [inserted]));

    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const original = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } });
    const [copy] = await asSuperuser(async (c) =>
      (
        await c.query(
          `INSERT INTO "AuditEvent" ("occurredAt", "actorType", "actorEmail", action, "requestId", data, note, seal, "sealKeyId")
           SELECT "occurredAt", "actorType", "actorEmail", action, "requestId", data, note, seal, "sealKeyId" FROM "AuditEvent" WHERE id = $1 RETURNING id`,
          [original.id],
        )
      ).rows.map((r) => r.id as string),
    );
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      problem: expect.stringContaining(`Event id ${copy} (request.created), not yet chained, was altered`),
    });
    await asSuperuser((c) => c.query(`DELETE FROM "AuditEvent" WHERE id = $1`, [copy]));
    await chainer.chainAuditEvents();
    await expectWholeChain();
  });

  it("may be given their place only once, and by nothing but that change", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } });
    // The place, link and key alone (the chainer's change) pass the database's guard once; anything more is refused.
    await expect(
      fx.db.$executeRawUnsafe(
        `UPDATE "AuditEvent" SET seq = 999999, "prevHash" = 'x', hash = 'y', "chainKeyId" = 'k', note = 'changed' WHERE id = $1`,
        event.id,
      ),
    ).rejects.toThrow(/append-only/);
    await chainer.chainAuditEvents();
    const linked = await fx.db.auditEvent.findUniqueOrThrow({ where: { id: event.id } });
    await expect(fx.db.$executeRawUnsafe(`UPDATE "AuditEvent" SET seq = 999999, hash = 'y' WHERE id = $1`, event.id)).rejects.toThrow(/append-only/);
    expect(await fx.db.auditEvent.findUniqueOrThrow({ where: { id: event.id } })).toMatchObject({ seq: linked.seq, hash: linked.hash });
    await expectWholeChain();
  });

  it("are guarded on every column: beside the chainer's change, or beside filling in an empty workflow, target or environment before the chain, any other change is refused", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, seq: null } });
    const client = new pg.Client({ connectionString: fx.url });
    await client.connect();
    try {
      // Every column the table has, read from the database: a column added later is covered, or this test says it has no change written for it.
      const { rows: columns } = await client.query<{ name: string; type: string }>(
        `SELECT column_name AS name, udt_name AS type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'AuditEvent' ORDER BY ordinal_position`,
      );
      const changed = ({ name, type }: { name: string; type: string }) => {
        const c = `"${name}"`;
        if (type === "text") return `coalesce(${c}, '') || 'x'`;
        if (type === "int8") return `coalesce(${c}, 0) + 1000003`;
        if (type === "timestamp") return `${c} + interval '1 second'`;
        if (type === "jsonb") return `${c} || '{"tampered": true}'::jsonb`;
        if (type === "ActorType") return `(CASE WHEN ${c} = 'system' THEN 'human' ELSE 'system' END)::"ActorType"`;
        if (type === "RequestStatus") return `(CASE WHEN ${c} = 'rejected' THEN 'failed' ELSE 'rejected' END)::"RequestStatus"`;
        throw new Error(`no change written for column ${name} (${type}): add one`);
      };
      const refused = async (set: string) => {
        await client.query("SAVEPOINT attempt");
        await expect(client.query(`UPDATE "AuditEvent" SET ${set} WHERE id = $1`, [event.id])).rejects.toThrow(/append-only/);
        await client.query("ROLLBACK TO SAVEPOINT attempt");
      };
      const link = `seq = -1, "prevHash" = 'p', hash = 'h', "chainKeyId" = 'k'`;
      const chainColumns = ["seq", "prevHash", "hash", "chainKeyId"];
      const fillable = ["workflowId", "targetId", "environment"];
      expect(columns.map((c) => c.name)).toEqual(expect.arrayContaining([...chainColumns, ...fillable, "data", "occurredAt", "actorEmail", "seal"]));
      // Everything below is undone at the end.
      await client.query("BEGIN");
      const others = columns.filter((c) => !chainColumns.includes(c.name));
      for (const column of others) await refused(`${link}, "${column.name}" = ${changed(column)}`);
      // The same value stored differently ("data" with 1.00 where it held 1.0: equal as jsonb) is a change too.
      await client.query("SET LOCAL session_replication_role = replica");
      await client.query(`UPDATE "AuditEvent" SET data = data || '{"n": 1.0}' WHERE id = $1`, [event.id]);
      await client.query("SET LOCAL session_replication_role = origin");
      await refused(`${link}, data = data || '{"n": 1.00}'`);
      expect((await client.query(`UPDATE "AuditEvent" SET ${link} WHERE id = $1`, [event.id])).rowCount).toBe(1);

      // An event recorded before the chain existed: a place, no link, and no workflow, target or environment yet.
      await client.query("SET LOCAL session_replication_role = replica");
      await client.query(
        `UPDATE "AuditEvent" SET hash = NULL, "prevHash" = NULL, "chainKeyId" = NULL, "workflowId" = NULL, "targetId" = NULL, environment = NULL WHERE id = $1`,
        [event.id],
      );
      await client.query("SET LOCAL session_replication_role = origin");
      const fill = `"workflowId" = 'temporary-access', "targetId" = 'payments-api-staging', environment = 'staging'`;
      for (const column of columns.filter((c) => !fillable.includes(c.name))) await refused(`${fill}, "${column.name}" = ${changed(column)}`);
      expect((await client.query(`UPDATE "AuditEvent" SET ${fill} WHERE id = $1`, [event.id])).rowCount).toBe(1);
      // Filled in once, each stays as it is.
      for (const name of fillable) await refused(`"${name}" = 'other'`);
      await client.query("ROLLBACK");
    } finally {
      await client.end();
      // Undone, even when a check above failed: the event is linked by the chainer as any other, and the tests after this one start from a whole chain.
      await chainer.chainAuditEvents();
    }
    expect(await fx.db.auditEvent.findUniqueOrThrow({ where: { id: event.id } })).toMatchObject({ seq: expect.any(BigInt), hash: expect.any(String) });
    await expectWholeChain();
  });

  // A type named in the guard is looked up through the session's search_path, temporary tables first: the table's own name, and "record" (the working row's type) if it were written bare.
  it.each(["AuditEvent", "record"])(
    "are guarded against a session's own types: a temporary table %j with two columns' names swapped lets no change through",
    async (name) => {
      const request = await engine.createRequest(alice, "temporary-access", validInput());
      const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, seq: null } });
      // A new session: the guard is compiled in it for the first time after its temporary table exists.
      const client = new pg.Client({ connectionString: fx.url });
      await client.connect();
      try {
        await client.query("BEGIN");
        // An event recorded before the chain existed, with no note: the guard lets an empty environment be filled in.
        await client.query("SET LOCAL session_replication_role = replica");
        await client.query(
          `UPDATE "AuditEvent" SET seq = -1, hash = NULL, "prevHash" = NULL, "chainKeyId" = NULL, environment = NULL, note = NULL WHERE id = $1`,
          [event.id],
        );
        await client.query("SET LOCAL session_replication_role = origin");
        const own = `pg_temp."${name}"`;
        await client.query(`CREATE TEMP TABLE "${name}" (LIKE public."AuditEvent") ON COMMIT DROP`);
        await client.query(`ALTER TABLE ${own} RENAME COLUMN note TO swapped`);
        await client.query(`ALTER TABLE ${own} RENAME COLUMN environment TO note`);
        await client.query(`ALTER TABLE ${own} RENAME COLUMN swapped TO environment`);
        // Writing the note of a recorded event is refused, as in any other session.
        await client.query("SAVEPOINT attempt");
        await expect(client.query(`UPDATE public."AuditEvent" SET note = 'rewritten' WHERE id = $1`, [event.id])).rejects.toThrow(/append-only/);
        await client.query("ROLLBACK TO SAVEPOINT attempt");
        // And what the guard allows still passes in that session: the environment filled in.
        expect((await client.query(`UPDATE public."AuditEvent" SET environment = 'staging' WHERE id = $1`, [event.id])).rowCount).toBe(1);
        expect((await client.query(`SELECT note, environment FROM public."AuditEvent" WHERE id = $1`, [event.id])).rows).toEqual([
          { note: null, environment: "staging" },
        ]);
        await client.query("ROLLBACK");
      } finally {
        await client.end();
        await chainer.chainAuditEvents();
      }
      expect(await fx.db.auditEvent.findUniqueOrThrow({ where: { id: event.id } })).toMatchObject({ seq: expect.any(BigInt), note: event.note });
      await expectWholeChain();
    },
  );
});

describe("events the chainer must not link", () => {
  const UNKNOWN_KEY = "ek-00000000deadbeef";

  it("an event inserted with a made-up seal under a made-up key, or altered with its key id rewritten, stays out of the chain and is named", async () => {
    const [forged] = await fx.db.$queryRawUnsafe<{ id: bigint }[]>(
      `INSERT INTO "AuditEvent" ("occurredAt", "actorType", "actorEmail", action, data, seal, "sealKeyId")
       VALUES (now(), 'human', 'mallory@example.com', 'request.approved', '{}', $1, $2) RETURNING id`,
      "ab".repeat(32),
      UNKNOWN_KEY,
    );
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const altered = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } });
    await asSuperuser((c) =>
      c.query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com', "sealKeyId" = $2 WHERE id = $1`, [altered.id, UNKNOWN_KEY]),
    );
    const genuine = await engine.createRequest(alice, "temporary-access", validInput());

    let linked = 0;
    const lines = await stderrOf(async () => (linked = await chainer.chainAuditEvents()));
    // The genuine event is linked past them; neither of them is.
    expect(linked).toBe(1);
    expect(await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: genuine.id } })).toMatchObject({ seq: expect.any(BigInt) });
    for (const id of [forged!.id, altered.id]) {
      expect(await fx.db.auditEvent.findUniqueOrThrow({ where: { id } })).toMatchObject({ seq: null, hash: null, chainKeyId: null });
      expect(lines).toContainEqual(expect.objectContaining({ level: "error", component: "audit", eventId: id.toString(), sealKeyId: UNKNOWN_KEY }));
    }
    const report = await verify.walkChain();
    expect(report).toMatchObject({ ok: false, outcome: "unverifiable", unchainedEvents: 2, uncheckedEvents: 2, missingKeyIds: [UNKNOWN_KEY] });
    expect(report.problem).toContain(
      `2 events are not chained because their seals cannot be checked, the first event id ${forged!.id} (request.approved): sealed under ${UNKNOWN_KEY}`,
    );
    expect(report.problem).toContain("they were inserted: treat them as altered");
    expect(report.problem).not.toContain("not by itself evidence of tampering");

    await asSuperuser(async (c) => {
      await c.query(`DELETE FROM "AuditEvent" WHERE id = $1`, [forged!.id]);
      await c.query(`UPDATE "AuditEvent" SET "actorEmail" = $2, "sealKeyId" = $3 WHERE id = $1`, [altered.id, altered.actorEmail, altered.sealKeyId]);
    });
    expect(await chainer.chainAuditEvents()).toBe(1);
    await expectWholeChain();
  });

  it("a row given a place past the chain's end is named as altered, and the chainer that reaches that place says so at error level", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } });
    const { lastSeq } = await chainHead();
    // Any writer can make the chainer's one change (the database does not know who asks): a place two past the end, out of the walk's reach.
    const future = lastSeq + 3n;
    await fx.db.$executeRawUnsafe(`UPDATE "AuditEvent" SET seq = $2, "prevHash" = 'x', hash = 'y', "chainKeyId" = 'k' WHERE id = $1`, event.id, future);
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      outcome: "altered",
      problem: `Event id ${event.id} (request.created) holds place ${future}, past the chain's end (${lastSeq}): it was given a place outside the chain, so it was altered.`,
    });

    for (let i = 0; i < 3; i++) await engine.createRequest(alice, "temporary-access", validInput());
    await expect(chainer.chainAuditEvents()).rejects.toThrow(`event id ${event.id} already holds place ${future}, past the chain's head (${lastSeq})`);
    const running = chainer.startChainer(20);
    const lines = await stderrOf(() =>
      expect
        .poll(async () => (await fx.db.auditEvent.count({ where: { seq: null } })) === 3 && (await chainHead()).lastSeq === lastSeq, { timeout: 5_000 })
        .toBe(true)
        .then(() => new Promise((r) => setTimeout(r, 200))),
    ).finally(() => running.close());
    expect(lines).toContainEqual(
      expect.objectContaining({ level: "error", component: "audit", error: expect.stringContaining(`event id ${event.id} already holds place ${future}`) }),
    );

    await asSuperuser((c) => c.query(`DELETE FROM "AuditEvent" WHERE id = $1`, [event.id]));
    expect(await chainer.chainAuditEvents()).toBe(3);
    await expectWholeChain();
  });

  it("a row with a link but no place is named as altered, and does not stop the chainer", async () => {
    const [poison] = await fx.db.$queryRawUnsafe<{ id: bigint }[]>(
      `INSERT INTO "AuditEvent" ("occurredAt", "actorType", "actorEmail", action, data, seal, "sealKeyId", "prevHash", hash, "chainKeyId")
       SELECT "occurredAt", "actorType", "actorEmail", action, data, seal, "sealKeyId", 'x', 'y', "chainKeyId" FROM "AuditEvent" WHERE seq = 1 RETURNING id`,
    );
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    expect(await chainer.chainAuditEvents()).toBe(1);
    expect(await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id } })).toMatchObject({ seq: expect.any(BigInt) });
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      outcome: "altered",
      problem: expect.stringMatching(new RegExp(`^Event id ${poison!.id} \\(.+\\) carries a link into the chain but has no place in it`)),
    });
    await asSuperuser((c) => c.query(`DELETE FROM "AuditEvent" WHERE id = $1`, [poison!.id]));
    await expectWholeChain();
  });
});

describe("a chainer kept from its lock", () => {
  it("warns once the lock has been held elsewhere for over a minute, naming the holder, then once a minute", async () => {
    const holder = new pg.Client({ connectionString: fx.url, application_name: "held-by-test" });
    await holder.connect();
    await holder.query(`SELECT pg_advisory_lock(hashtext('latchkey.audit-chainer'))`);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const start = Date.now();
      const at = (seconds: number) => vi.setSystemTime(start + seconds * 1000);
      const warnings = async (seconds: number) => {
        at(seconds);
        let result: number | null = 0;
        const lines = await stderrOf(async () => (result = await chainer.chainBatch()));
        expect(result).toBeNull();
        return lines.filter((l) => l.level === "warn" && String(l.msg).includes("audit chainer's lock"));
      };
      expect(await warnings(0)).toEqual([]);
      expect(await warnings(30)).toEqual([]);
      const [first] = await warnings(61);
      expect(first).toMatchObject({ component: "audit", seconds: 61, holders: [expect.objectContaining({ application: "held-by-test" })] });
      expect(await warnings(90)).toEqual([]);
      expect(await warnings(122)).toHaveLength(1);
    } finally {
      vi.useRealTimers();
      await holder.end();
    }
    // Once free, passes run again, and a later wait starts its minute afresh.
    await expect.poll(() => chainer.chainBatch(), { timeout: 10_000 }).not.toBeNull();
  });

  it("is waited out by the step that must link everything committed (the restore marker's), and named when it lasts", async () => {
    await chainer.chainAuditEvents();
    const holder = new pg.Client({ connectionString: fx.url });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtext('latchkey.audit-chainer'))`);
      await fx.db.$transaction((tx) => record.recordEvent(tx, { actor: { type: "system", email: "while-held" }, action: "bench.held", data: {} }));
      // The plain pass gives up at once, leaving the event out; the waiting one links it once the other pass lets go.
      expect(await chainer.chainAuditEvents()).toBe(0);
      await expect(chainer.chainEverythingCommitted(300)).rejects.toThrow(
        /another audit chainer has held its lock for over 0.3 s: the events committed so far could not all be linked/,
      );
      const waited = chainer.chainEverythingCommitted(30_000);
      await new Promise((r) => setTimeout(r, 500));
      await holder.query(`SELECT pg_advisory_unlock(hashtext('latchkey.audit-chainer'))`);
      expect(await waited).toBe(1);
    } finally {
      await holder.end();
    }
    await expectWholeChain();
  });
});

describe("a chainer woken by many commits", () => {
  it("links the commits of one moment in one pass: a wake-up waits a moment for the others", async () => {
    await chainer.chainAuditEvents();
    const running = chainer.startChainer(60_000, 1_000);
    try {
      // The pass it makes when it starts finds nothing to link.
      await expect.poll(() => running.passes()).toBe(1);
      const head = await chainHead();
      for (let i = 0; i < 5; i++) await engine.createRequest(alice, "temporary-access", validInput());
      const waiting = await fx.db.auditEvent.count({ where: { seq: null } });
      expect(waiting).toBeGreaterThanOrEqual(5);
      // Five wake-ups a few milliseconds apart, as five writers' NOTIFYs reach the worker.
      const started = Date.now();
      for (let i = 0; i < 5; i++) {
        running.wake();
        await new Promise((r) => setTimeout(r, 10));
      }
      await expect.poll(() => running.passes(), { timeout: 10_000, interval: 20 }).toBe(2);
      // One pass linked them all, once the first wake-up had waited its moment.
      expect(Date.now() - started).toBeGreaterThanOrEqual(990);
      expect(await fx.db.auditEvent.count({ where: { seq: null } })).toBe(0);
      expect((await chainHead()).lastSeq).toBe(head.lastSeq + BigInt(waiting));
      // A wake-up heard while nothing waits makes one quiet pass, not a pass per wake-up.
      running.wake();
      running.wake();
      await expect.poll(() => running.passes(), { timeout: 10_000 }).toBe(3);
      await new Promise((r) => setTimeout(r, 1_200));
      expect(running.passes()).toBe(3);
    } finally {
      await running.close();
    }
    await expectWholeChain();
  });

  it("links what a wake-up still waits for when it is closed", async () => {
    await chainer.chainAuditEvents();
    const running = chainer.startChainer(60_000, 60_000);
    await expect.poll(() => running.passes()).toBe(1);
    await engine.createRequest(alice, "temporary-access", validInput());
    running.wake();
    await running.close();
    expect(await fx.db.auditEvent.count({ where: { seq: null } })).toBe(0);
    await expectWholeChain();
  });
});

describe("wake-ups sent by a process", () => {
  it("are one every 25 ms at most however many commits ask, and the last ask of a burst is answered", async () => {
    const wakeups = await import("@/lib/audit/chain-wake");
    const listener = new pg.Client({ connectionString: fx.url });
    await listener.connect();
    const heard: number[] = [];
    listener.on("notification", (n) => {
      if (n.channel === "latchkey_jobs" && n.payload === wakeups.CHAIN_WAKE) heard.push(performance.now());
    });
    await listener.query("LISTEN latchkey_jobs");
    try {
      // Nothing sent lately, so the first ask is sent at once.
      await new Promise((r) => setTimeout(r, wakeups.WAKE_SPACING_MS * 2));
      const started = performance.now();
      let asked = 0;
      let lastAsked = 0;
      // A burst: an ask every 2 ms for 300 ms, as audited commits under load ask.
      while (performance.now() - started < 300) {
        wakeups.wakeChainer();
        asked += 1;
        lastAsked = performance.now();
        await new Promise((r) => setTimeout(r, 2));
      }
      // The burst's last ask is answered by a wake-up sent after it, not dropped as one too soon.
      await expect.poll(() => (heard.at(-1) ?? 0) > lastAsked, { timeout: 5_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(asked).toBeGreaterThan(50);
      expect(heard[0]! - started).toBeLessThan(1_000);
      // One at once, then at most one a spacing: a wake-up per ask would have been over fifty.
      expect(heard.length).toBeGreaterThanOrEqual(2);
      expect(heard.length).toBeLessThanOrEqual(Math.floor((heard.at(-1)! - started) / wakeups.WAKE_SPACING_MS) + 2);
    } finally {
      await listener.end();
    }
  });
});

describe("fifty writers at once", () => {
  it("give one gap-free chain, every event linked exactly once, while the chainer runs beside them", async () => {
    const { createPrismaClient } = await import("@/lib/db");
    // Three pools of 20 (more than a process keeps by default): each of the 50 writers holds a connection of its own while its transaction is open.
    const clients: PrismaClient[] = [createPrismaClient(fx.url, 20), createPrismaClient(fx.url, 20), createPrismaClient(fx.url, 20)];
    const running = chainer.startChainer(20);
    const before = await fx.db.auditEvent.count();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      await Promise.all(
        Array.from({ length: 50 }, (_, w) =>
          (async () => {
            for (let t = 0; t < 4; t++) {
              // Two events per transaction, and a pause of random length before the commit: commits land out of id order.
              // Fifty writers ask for new connections at once: allow the product's wait (TX in lib/approvals/lifecycle.ts), not Prisma's 2 s default, which a busy machine exceeds.
              await clients[w % 3]!.$transaction(
                async (tx) => {
                  await record.recordEvent(tx, { actor: { type: "system", email: `writer-${w}` }, action: "bench.write", data: { w, t, step: 1 } });
                  await sleep(Math.random() * 30);
                  await record.recordEvent(tx, { actor: { type: "system", email: `writer-${w}` }, action: "bench.write", data: { w, t, step: 2 } });
                },
                { maxWait: 15_000, timeout: 30_000 },
              );
            }
          })(),
        ),
      );
    } finally {
      await running.close();
      await Promise.all(clients.map((c) => c.$disconnect()));
    }
    await chainer.chainAuditEvents();
    expect(await fx.db.auditEvent.count()).toBe(before + 400);
    await expectWholeChain();
    // Places follow the order events became visible, not their ids: some later id was linked before an earlier one.
    const written = await fx.db.auditEvent.findMany({ where: { action: "bench.write" }, select: { id: true, seq: true }, orderBy: { id: "asc" } });
    expect(written.some((e, i) => i > 0 && e.seq! < written[i - 1]!.seq!)).toBe(true);
  }, 60_000);
});

describe("a chainer killed part-way", () => {
  it("leaves every event linked once or waiting, and the next pass goes on from the head", async () => {
    for (let i = 0; i < 20; i++)
      await fx.db.$transaction(async (tx) => {
        for (let k = 0; k < 100; k++) await record.recordEvent(tx, { actor: { type: "system", email: "backlog" }, action: "bench.backlog", data: { i, k } });
      });
    const waiting = await fx.db.auditEvent.count({ where: { seq: null } });
    expect(waiting).toBe(2000);
    const head = async () => (await fx.db.auditChainHead.findUniqueOrThrow({ where: { id: 1 } })).lastSeq;
    const start = await head();

    // Node itself with tsx's loader (not the tsx wrapper, which would outlive the kill in a child of its own).
    const child = spawn(process.execPath, ["--import", "tsx", "tests/helpers/chain-in-child.ts", "20"], { env: { ...process.env }, stdio: "pipe" });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
    await expect.poll(head, { timeout: 30_000, interval: 5 }).toBeGreaterThan(start);
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");

    // Once the server has ended the dead chainer's session (its lock is free again), what it committed is a whole chain up to the head; the rest waits, each event sealed.
    const probe = new pg.Client({ connectionString: fx.url });
    await probe.connect();
    await expect
      .poll(async () => (await probe.query(`SELECT pg_try_advisory_lock(hashtext('latchkey.audit-chainer')) AS free`)).rows[0].free, { timeout: 30_000 })
      .toBe(true);
    await probe.query(`SELECT pg_advisory_unlock(hashtext('latchkey.audit-chainer'))`);
    await probe.end();
    const left = await fx.db.auditEvent.count({ where: { seq: null } });
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(waiting);
    expect(await verify.walkChain()).toMatchObject({ ok: true, unchainedEvents: left });

    expect(await chainer.chainAuditEvents()).toBe(left);
    await expectWholeChain();
  }, 90_000);
});
