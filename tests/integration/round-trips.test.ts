import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { createTestDatabase } from "../helpers/database";
import { validInput } from "../helpers/engine-fixture";
import { setTestEnvironment } from "../helpers/environment";
import { transactionStatements } from "../helpers/statements";
import { clientFlightsSince, flightMark, wireProxy, type WireProxy } from "../helpers/wire-proxy";
import type { Principal } from "@/lib/policy/evaluate";
import type { Role } from "@/lib/policy/schema";

/**
 * A transaction of db.$transaction sends its BEGIN with its first statement and its COMMIT
 * right behind its last, each pair in one write, without waiting for the answer to the first
 * (lib/db.ts, pipelined): two round trips fewer per transaction. Counted on the wire, through a
 * TCP proxy in front of PostgreSQL that splits what each side sends into flights (what one side
 * sent before the other answered). All or nothing still holds when the last statement fails
 * with its COMMIT already sent, and the pool's connections are left as they were.
 */
let proxy: WireProxy;
let drop: () => Promise<void>;
let url: string;
let db: typeof import("@/lib/db");
let engine: typeof import("@/lib/approvals/engine");
let sqlOf: typeof import("@/lib/db/sql");
let recordEvent: typeof import("@/lib/audit/record").recordEvent;
let SYSTEM: typeof import("@/lib/audit/record").SYSTEM;
let outside: pg.Client;
let alice: Principal;
let bob: Principal;
let carol: Principal;

beforeAll(async () => {
  const database = await createTestDatabase();
  drop = database.drop;
  url = database.url;
  const server = new URL(inject("pgAdminUrl"));
  proxy = await wireProxy(server.hostname, Number(server.port || 5432));
  const viaProxy = new URL(database.url);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  setTestEnvironment(viaProxy.toString());
  db = await import("@/lib/db");
  engine = await import("@/lib/approvals/engine");
  sqlOf = await import("@/lib/db/sql");
  ({ recordEvent, SYSTEM } = await import("@/lib/audit/record"));
  const { rolesForGroups } = await import("@/lib/policy/evaluate");
  const { policy } = await import("@/lib/policy/current");
  const user = async (email: string, groups: string[]): Promise<Principal> => {
    const roles = rolesForGroups(policy(), groups) as Role[];
    const row = await db.db.user.create({ data: { email, name: email, groups, roles } });
    return { id: row.id, email, groups, roles };
  };
  // The change feed heard, as in the portal's processes: the signing key and the issuer are then kept in memory after their first use.
  const { changesLive } = await import("@/lib/db/changes");
  for (let i = 0; i < 250 && !changesLive(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(changesLive()).toBe(true);
  alice = await user("alice@example.com", ["engineering"]);
  bob = await user("bob@example.com", ["engineering-leads"]);
  carol = await user("carol@example.com", ["platform-admins"]);
  outside = new pg.Client({ connectionString: url });
  await outside.connect();
  await outside.query(`CREATE TABLE wire_probe (name text PRIMARY KEY)`);
  // An audit event of this action cannot be written: the last statement of its transaction fails.
  await outside.query(`CREATE FUNCTION refuse_probe() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.action = 'probe.refused' THEN RAISE EXCEPTION 'this event is refused'; END IF; RETURN NEW; END $$`);
  await outside.query(`CREATE TRIGGER refuse_probe BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION refuse_probe()`);
}, 60_000);
afterAll(async () => {
  await outside?.end();
  await db?.disconnectDb();
  await proxy?.close();
  await drop?.();
});

/** The client's flights of the transaction `work` runs (on the connection that sent its BEGIN), with the statements it sent. */
async function flightsOf<T>(work: () => Promise<T>): Promise<{ value: T; flights: string[]; statements: string[] }> {
  const mark = flightMark(proxy);
  const { value, texts } = await transactionStatements(work);
  // Its answers have all come back by now; a flight of its own connection is done.
  const ofTransaction = clientFlightsSince(proxy, mark).filter((flights) => flights.some((f) => f.includes("BEGIN")));
  expect(ofTransaction).toHaveLength(1);
  return { value, flights: ofTransaction[0]!, statements: texts };
}

/** Whether a flight carries a simple-protocol statement of this text (BEGIN, COMMIT, ROLLBACK): a Query message, 'Q', its length and the text. */
const carries = (flight: string, text: string) => flight.includes(`Q\u0000\u0000\u0000${String.fromCharCode(4 + text.length + 1)}${text}\u0000`);
/** Whether a flight carries more than that one statement. */
const more = (flight: string, text: string) => flight.length > 1 + 4 + text.length + 1;

describe("a transaction's round trips", () => {
  // Each test starts with the probe's table empty, also after one that failed half-way.
  afterEach(async () => {
    await outside.query(`DELETE FROM wire_probe`);
  });

  it("making a request: BEGIN goes with the request's insert and COMMIT with the audit event, two round trips where there were four, the first time and the next", async () => {
    for (const round of [1, 2]) {
      const {
        value: made,
        flights,
        statements,
      } = await flightsOf(() => engine.createRequest(alice, "temporary-access", validInput({ role: "write", justification: `Round trips, round ${round}` })));
      expect(statements).toHaveLength(4);
      expect(flights).toHaveLength(2);
      expect(carries(flights[0]!, "BEGIN") && more(flights[0]!, "BEGIN")).toBe(true);
      expect(carries(flights[1]!, "COMMIT") && more(flights[1]!, "COMMIT")).toBe(true);
      // And it committed: another session sees the request and its event.
      const { rows } = await outside.query(`SELECT action FROM "AuditEvent" WHERE "requestId" = $1`, [made.id]);
      expect(rows.map((r) => r.action)).toEqual(["request.created"]);
    }
  });

  it("approving one: three round trips (the row lock with what the decision reads; the decision, the credential and the request's update; the audit events with COMMIT), the second time; the first makes the signing key", async () => {
    for (const round of [1, 2, 3]) {
      const made = await engine.createRequest(alice, "temporary-access", validInput({ role: "write", justification: `Round trips, approval ${round}` }));
      const {
        value: approved,
        flights,
        statements,
      } = await flightsOf(() => engine.decide(bob, { requestId: made.id, decision: "approve", comment: `round ${round}` }));
      expect(approved.status).toBe("active");
      expect(statements[0]).toBe("BEGIN");
      expect(statements.at(-1)).toBe("COMMIT");
      expect(carries(flights[0]!, "BEGIN") && more(flights[0]!, "BEGIN")).toBe(true);
      expect(carries(flights.at(-1)!, "COMMIT") && more(flights.at(-1)!, "COMMIT")).toBe(true);
      expect(flights.slice(1, -1).some((f) => carries(f, "BEGIN") || carries(f, "COMMIT"))).toBe(false);
      // BEGIN, the lock, the context, the decision, the credential, the update, the events, COMMIT.
      if (round > 1) expect({ statements: statements.length, flights: flights.length }).toEqual({ statements: 8, flights: 3 });
      else expect(flights.length).toBeLessThan(statements.length - 2);
    }
  });

  it("two approvers at once on a two-person stage: the one that waited for the row lock reads the other's decision, so the second approval activates the grant, every time", async () => {
    for (let round = 0; round < 8; round++) {
      const made = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "two-person", justification: `Two at once, round ${round}` }));
      const decided = await Promise.all([bob, carol].map((who) => engine.decide(who, { requestId: made.id, decision: "approve", comment: `round ${round}` })));
      expect(decided.map((d) => d.status).sort()).toEqual(["active", "pending"]);
      const { rows } = await outside.query(
        `SELECT (SELECT count(*)::int FROM "Approval" WHERE "requestId" = $1) AS decisions, (SELECT count(*)::int FROM "Credential" WHERE "requestId" = $1) AS credentials,
                (SELECT status::text FROM "AccessRequest" WHERE id = $1) AS status`,
        [made.id],
      );
      expect(rows[0]).toEqual({ decisions: 2, credentials: 1, status: "active" });
    }
  });

  it("a write sent ahead that fails: the transaction fails with its error, not the refusals of the statements behind it, and nothing of it is saved", async () => {
    await outside.query(`INSERT INTO wire_probe (name) VALUES ('taken')`);
    const attempts: Record<string, (tx: import("@/lib/db").Tx) => Promise<unknown>> = {
      "a statement of the driver": (tx) => sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('behind')`),
      "a query of Prisma's": (tx) => tx.user.findMany(),
      "the commit": async () => undefined,
    };
    for (const [behind, next] of Object.entries(attempts)) {
      const failed = await db.db
        .$transaction(async (tx) => {
          await sqlOf.sqlSend(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('taken')`);
          await next(tx);
          return "committed";
        })
        .catch((error: unknown) => error);
      expect({ behind, message: (failed as Error).message }).toEqual({
        behind,
        message: expect.stringContaining("duplicate key value violates unique constraint"),
      });
      expect((await outside.query(`SELECT name FROM wire_probe ORDER BY name`)).rows).toEqual([{ name: "taken" }]);
    }
    await outside.query(`DELETE FROM wire_probe`);
  });

  it("a statement whose value cannot be written, sent ahead or with the COMMIT behind it: no COMMIT goes out, nothing of the transaction is saved, and the error is the value's", async () => {
    const { beforeCommit } = await import("@/lib/db/after-commit");
    // pg finds such a value only after writing the statement's Parse, then writes a Sync in its place and goes on.
    const unwritable = {
      toPostgres: () => {
        throw new Error("this value cannot be written");
      },
    };
    const ways: Record<string, (tx: import("@/lib/db").Tx) => Promise<unknown>> = {
      "sent ahead, a statement behind it": async (tx) => {
        await sqlOf.sqlSend(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES (${unwritable})`);
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('behind')`);
      },
      "sent ahead, an invalid date, the commit behind it": async (tx) => {
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('before')`);
        await sqlOf.sqlSend(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES (${new Date(Number.NaN)}::text)`);
      },
      "sent ahead, its conversion throwing text rather than an Error, caught by the code": async (tx) => {
        const throwsText = {
          toPostgres: () => {
            throw "this value cannot be written";
          },
        };
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('before')`);
        await sqlOf.sqlAhead(tx, sqlOf.sql`SELECT ${throwsText}::text`).catch(() => undefined);
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('behind')`);
      },
      "sent ahead, its error caught by the code": async (tx) => {
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('before')`);
        await sqlOf.sqlAhead(tx, sqlOf.sql`SELECT ${unwritable}::text`).catch(() => undefined);
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('behind')`);
      },
      "the last statement, with the COMMIT to go behind it": async (tx) => {
        await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('before')`);
        beforeCommit(tx, async () => {
          await sqlOf.sqlRunLast(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES (${unwritable})`).catch(() => undefined);
        });
      },
    };
    for (const [way, work] of Object.entries(ways)) {
      const mark = flightMark(proxy);
      const failed = await db.db
        .$transaction(async (tx) => {
          await work(tx);
          return "committed";
        })
        .catch((error: unknown) => error);
      expect({ way, message: (failed as Error).message }).toEqual({ way, message: expect.stringMatching(/this value cannot be written|Invalid time value/) });
      expect({ way, saved: (await outside.query(`SELECT name FROM wire_probe`)).rows }).toEqual({ way, saved: [] });
      // On the transaction's connection (the one that sent its statements), a ROLLBACK and no COMMIT.
      const ours = clientFlightsSince(proxy, mark).filter((flights) => flights.some((f) => f.includes("wire_probe")));
      expect(ours).toHaveLength(1);
      const commit = ours[0]!.some((f) => carries(f, "COMMIT"));
      const rollback = ours[0]!.some((f) => carries(f, "ROLLBACK"));
      expect({ way, commit, rollback }).toEqual({ way, commit: false, rollback: true });
    }
    // The pool's connections are fine after: the next transaction commits.
    await db.db.$transaction(async (tx) => sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('after')`));
    expect((await outside.query(`SELECT name FROM wire_probe`)).rows).toEqual([{ name: "after" }]);
    await outside.query(`DELETE FROM wire_probe`);
  });

  it("a write sent ahead that fails after the code has failed for its own reason: the error is the code's", async () => {
    await outside.query(`INSERT INTO wire_probe (name) VALUES ('taken')`);
    const failed = await db.db
      .$transaction(async (tx) => {
        await sqlOf.sqlSend(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('taken')`);
        throw new Error("the code's own reason");
      })
      .catch((error: unknown) => error);
    expect((failed as Error).message).toBe("the code's own reason");
    await outside.query(`DELETE FROM wire_probe`);
  });

  it("a row lock that fails (cancelled while it waits): the decision fails with the lock's error, nothing is left unhandled, and the request can be approved after", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      const made = await engine.createRequest(alice, "temporary-access", validInput({ role: "write", justification: "A lock cancelled while it waits" }));
      await holder.query("BEGIN");
      await holder.query(`SELECT id FROM "AccessRequest" WHERE id = $1 FOR UPDATE`, [made.id]);
      const deciding = engine.decide(bob, { requestId: made.id, decision: "approve", comment: "cancelled" }).then(
        () => "decided",
        (error: unknown) => error as Error,
      );
      // Cancels the decision's statement once it waits for the row lock; the context's, sent behind it, is refused as aborted.
      let cancelled = false;
      for (let i = 0; i < 200 && !cancelled; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const { rows } = await outside.query(
          `SELECT pg_cancel_backend(pid) AS done FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE '%FOR UPDATE%'`,
        );
        cancelled = rows.some((r: { done: boolean }) => r.done);
      }
      expect(cancelled).toBe(true);
      const outcome = await deciding;
      expect(outcome).toBeInstanceOf(Error);
      await holder.query("ROLLBACK");
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
      const approved = await engine.decide(bob, { requestId: made.id, decision: "approve", comment: "after the cancelled one" });
      expect(approved.status).toBe("active");
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await holder.end();
    }
  });

  it("a connection that PostgreSQL last said is still in a transaction when it is given back leaves the pool, and the next transaction runs on another", async () => {
    const status = pg.Client.prototype.getTransactionStatus;
    const asked: pg.Client[] = [];
    // As a connection would say it whose transaction was left open ('T') by a path that never ended it.
    pg.Client.prototype.getTransactionStatus = function (this: pg.Client) {
      asked.push(this);
      return "T";
    };
    try {
      await db.db.$transaction(async (tx) => sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES (${"given back open"})`));
    } finally {
      pg.Client.prototype.getTransactionStatus = status;
    }
    expect(asked).toHaveLength(1);
    // Given back with an error, pg-pool ends it rather than keep it.
    expect((asked[0] as unknown as { _ending: boolean })._ending).toBe(true);
    await db.db.$transaction(async (tx) => sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('next')`));
    expect((await outside.query(`SELECT name FROM wire_probe ORDER BY name`)).rows).toEqual([{ name: "given back open" }, { name: "next" }]);
  });

  it("a transaction that sends nothing: its BEGIN and COMMIT go out together, once", async () => {
    const { value, flights } = await flightsOf(() => db.db.$transaction(async () => "nothing sent"));
    expect(value).toBe("nothing sent");
    expect(flights).toHaveLength(1);
    expect(carries(flights[0]!, "BEGIN") && carries(flights[0]!, "COMMIT")).toBe(true);
  });

  it("code that fails before sending anything: BEGIN and ROLLBACK go out together, and the error is the code's", async () => {
    const mark = flightMark(proxy);
    const failed = await db.db
      .$transaction(async () => {
        throw new Error("nothing to do");
      })
      .catch((error: unknown) => error);
    expect((failed as Error).message).toBe("nothing to do");
    const flights = clientFlightsSince(proxy, mark).filter((f) => f.some((x) => x.includes("BEGIN")));
    expect(flights).toEqual([[expect.stringContaining("ROLLBACK")]]);
  });

  it("a last statement that fails with its COMMIT already behind it: nothing of the transaction is saved, the error is the statement's, and the next transaction on the pool runs", async () => {
    const { flights } = await flightsOf(async () => {
      const failed = await db.db
        .$transaction(async (tx) => {
          await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('before the refused event')`);
          await recordEvent(tx, { actor: SYSTEM, action: "probe.refused", data: {} });
          return "committed";
        })
        .catch((error: unknown) => error);
      expect((failed as Error).message).toContain("this event is refused");
    });
    // The COMMIT went out behind the refused insert, and PostgreSQL rolled the transaction back.
    expect(carries(flights.at(-1)!, "COMMIT")).toBe(true);
    expect((await outside.query(`SELECT name FROM wire_probe`)).rows).toEqual([]);
    expect((await outside.query(`SELECT count(*)::int AS n FROM "AuditEvent" WHERE action = 'probe.refused'`)).rows[0].n).toBe(0);
    await db.db.$transaction(async (tx) => {
      await sqlOf.sqlRun(tx, sqlOf.sql`INSERT INTO wire_probe (name) VALUES ('after')`);
      await recordEvent(tx, { actor: SYSTEM, action: "probe.accepted", data: {} });
    });
    expect((await outside.query(`SELECT name FROM wire_probe`)).rows).toEqual([{ name: "after" }]);
  });

  it("leaves every connection of the pool as it was: a query that reads its rows a few at a time (which pg refuses in pipeline mode) runs on each", async () => {
    const pool = db.processPool();
    expect(pool.totalCount).toBeGreaterThan(1);
    const clients = await Promise.all(Array.from({ length: pool.totalCount }, () => pool.connect()));
    try {
      for (const client of clients) {
        const result = await client.query({ text: "SELECT generate_series(1, 5) AS n", rows: 2 } as pg.QueryConfig);
        expect(result.rows.map((r: { n: number }) => r.n)).toEqual([1, 2, 3, 4, 5]);
      }
    } finally {
      for (const client of clients) client.release();
    }
  });
});

describe("a pass of the audit chainer", () => {
  /** Events of `n` committed transactions, not yet linked. */
  const commitEvents = async (n: number, label: string) => {
    for (let i = 0; i < n; i++) await db.db.$transaction((tx) => recordEvent(tx, { actor: SYSTEM, action: "probe.accepted", data: { label, i } }));
  };
  const unchained = async () => Number((await outside.query(`SELECT count(*) AS n FROM "AuditEvent" WHERE seq IS NULL`)).rows[0].n);

  it("four round trips (BEGIN with the lock; the head with the events; one statement that checks past the head, links and moves the head; COMMIT), linking every event to the head, the first time and the next", async () => {
    const { chainAuditEvents, chainBatch } = await import("@/lib/audit/chainer");
    const { verifyAuditChain } = await import("@/lib/audit/verify");
    // What earlier tests left, linked first, so that each round links exactly its own.
    await chainAuditEvents();
    expect(await unchained()).toBe(0);
    for (const [round, n] of [
      [1, 3],
      [2, 7],
    ] as const) {
      await commitEvents(n, `pass ${round}`);
      expect(await unchained()).toBe(n);
      const before = (await outside.query(`SELECT "lastSeq" FROM "AuditChainHead" WHERE id = 1`)).rows[0].lastSeq as string;
      const { value: linked, flights, statements } = await flightsOf(() => chainBatch());
      expect(linked).toBe(n);
      expect(statements).toHaveLength(6);
      expect(flights).toHaveLength(4);
      expect(carries(flights[0]!, "BEGIN") && more(flights[0]!, "BEGIN")).toBe(true);
      expect(carries(flights[3]!, "COMMIT") && !more(flights[3]!, "COMMIT")).toBe(true);
      // Committed, and the head moved past exactly these events, in order.
      expect(await unchained()).toBe(0);
      const { rows } = await outside.query(
        `SELECT (SELECT "lastSeq" FROM "AuditChainHead" WHERE id = 1) AS head, (SELECT max(seq) FROM "AuditEvent") AS last,
                (SELECT count(*) FROM "AuditEvent" WHERE seq > $1) AS placed`,
        [before],
      );
      expect(rows[0]).toEqual({ head: String(BigInt(before) + BigInt(n)), last: String(BigInt(before) + BigInt(n)), placed: String(n) });
    }
    const verified = await verifyAuditChain("manual");
    expect({ ok: verified.ok, unchained: verified.unchainedEvents }).toEqual({ ok: true, unchained: 0 });
  });

  it("a place past the head already held (a row given it by hand): the pass names the holder and writes nothing, the database refusing no statement of it, every time it runs", async () => {
    const { chainAuditEvents, chainBatch } = await import("@/lib/audit/chainer");
    await chainAuditEvents();
    await commitEvents(1, "held place");
    const head = (await outside.query(`SELECT "lastSeq", "lastHash" FROM "AuditChainHead" WHERE id = 1`)).rows[0] as { lastSeq: string; lastHash: string };
    const held = String(BigInt(head.lastSeq) + 1n);
    // Any writer can make the chainer's one change (the database does not know who asks): the next place, with a made-up link.
    const [intruder] = (await outside.query(`SELECT id FROM "AuditEvent" WHERE seq IS NULL ORDER BY id DESC LIMIT 1`)).rows as { id: string }[];
    await outside.query(`UPDATE "AuditEvent" SET seq = $2, "prevHash" = 'x', hash = 'y', "chainKeyId" = 'k' WHERE id = $1`, [intruder!.id, held]);
    await commitEvents(2, "behind the held place");
    for (let round = 0; round < 2; round++) {
      const spy = vi.spyOn(pg.Client.prototype, "query");
      try {
        await expect(chainBatch()).rejects.toThrow(`event id ${intruder!.id} already holds place ${held}`);
        // Each statement's answer, as the driver got it: none is the database's refusal (the links' write failing on seq's uniqueness).
        const answers = await Promise.allSettled(spy.mock.results.map((r) => r.value as unknown));
        expect(answers.filter((a) => a.status === "rejected").map((a) => (a as PromiseRejectedResult).reason?.code ?? String(a.reason))).toEqual([]);
      } finally {
        spy.mockRestore();
      }
      const { rows } = await outside.query(
        `SELECT (SELECT "lastSeq" FROM "AuditChainHead" WHERE id = 1) AS head, (SELECT "lastHash" FROM "AuditChainHead" WHERE id = 1) AS hash,
                (SELECT count(*) FROM "AuditEvent" WHERE seq IS NULL) AS unchained`,
      );
      expect(rows[0]).toEqual({ head: head.lastSeq, hash: head.lastHash, unchained: "2" });
    }
  });
});
