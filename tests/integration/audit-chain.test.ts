import { execFile } from "node:child_process";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let verify: typeof import("@/lib/audit/verify");
let chainer: typeof import("@/lib/audit/chainer");
let alice: Principal;
let bob: Principal;

/** A superuser connection that bypasses triggers, as someone editing the database by hand would. */
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

/** Renumbers events from `from` on by `delta`, through negative numbers so the unique index holds at every row. */
async function shift(c: pg.Client, from: bigint, delta: number) {
  await c.query(`UPDATE "AuditEvent" SET seq = -(seq + $2) WHERE seq >= $1`, [from, delta]);
  await c.query(`UPDATE "AuditEvent" SET seq = -seq WHERE seq < 0`);
}

async function someHistory(n = 3) {
  for (let i = 0; i < n; i++) {
    const r = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: r.id, decision: i % 2 ? "reject" : "approve", comment: `decision ${i}` });
  }
}

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  verify = await import("@/lib/audit/verify");
  chainer = await import("@/lib/audit/chainer");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  await someHistory();
  // Events get their place from the chainer after they commit (the worker runs it; here, by hand).
  await chainer.chainAuditEvents();
});
afterAll(() => fx?.close());

describe("the audit chain", () => {
  it("links every event to the one before it, in a gap-free order, and verifies", async () => {
    await chainer.chainAuditEvents();
    const events = await fx.db.auditEvent.findMany({ orderBy: { seq: "asc" } });
    expect(events.length).toBeGreaterThan(10);
    expect(events.map((e) => Number(e.seq))).toEqual(events.map((_, i) => i + 1));
    for (let i = 1; i < events.length; i++) expect(events[i]!.prevHash).toBe(events[i - 1]!.hash);
    expect(events[0]!.prevHash).toBe("");
    const result = await verify.verifyAuditChain("manual");
    expect(result).toMatchObject({ ok: true, eventsChecked: events.length, problem: null });
    expect(result.lastSeq).toBe(events.at(-1)!.seq);
  });

  it("keeps a total order when many transactions record at once", async () => {
    const before = await fx.db.auditEvent.count();
    await Promise.all(Array.from({ length: 12 }, () => engine.createRequest(alice, "temporary-access", validInput())));
    expect(await fx.db.auditEvent.count()).toBe(before + 12);
    // Committed but not chained yet: verification counts them and checks each one's seal.
    expect(await verify.walkChain()).toMatchObject({ ok: true, unchainedEvents: 12 });
    expect(await chainer.chainAuditEvents()).toBe(12);
    expect(await verify.walkChain()).toMatchObject({ ok: true, unchainedEvents: 0, oldestUnchainedAt: null });
  });

  it("is refused UPDATE, DELETE and TRUNCATE by the database", async () => {
    const first = await fx.db.auditEvent.findFirstOrThrow({ orderBy: { seq: "asc" } });
    await expect(fx.db.auditEvent.update({ where: { id: first.id }, data: { actorEmail: "mallory@example.com" } })).rejects.toThrow(/append-only/);
    await expect(fx.db.auditEvent.deleteMany({ where: { id: first.id } })).rejects.toThrow(/append-only/);
    await expect(fx.db.$executeRawUnsafe(`TRUNCATE "AuditEvent"`)).rejects.toThrow(/append-only/);
    expect(await fx.db.auditEvent.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({ actorEmail: first.actorEmail });
  });

  it("names an event a superuser altered, then verifies again once it is put back", async () => {
    const target = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "request.approved" }, orderBy: { seq: "asc" } });
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "note" = 'approved by the CFO' WHERE seq = $1`, [target.seq]));
    const broken = await verify.verifyAuditChain("manual");
    expect(broken).toMatchObject({
      ok: false,
      firstBadSeq: target.seq,
      problem: `Event ${target.seq} (request.approved) was altered: its content no longer matches its hash.`,
    });
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "note" = $2 WHERE seq = $1`, [target.seq, target.note]));
    expect((await verify.verifyAuditChain("manual")).ok).toBe(true);

    // Altering an actor inside the JSON data is caught as well.
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "data" = jsonb_set("data", '{comment}', '"fine"') WHERE seq = $1`, [target.seq]));
    expect(await verify.walkChain()).toMatchObject({ ok: false, firstBadSeq: target.seq });
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "data" = $2 WHERE seq = $1`, [target.seq, JSON.stringify(target.data)]));
    expect((await verify.walkChain()).ok).toBe(true);
  });

  it("names an event a superuser deleted", async () => {
    const victim = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "request.rejected" } });
    const [row] = await asSuperuser(async (c) => (await c.query(`DELETE FROM "AuditEvent" WHERE seq = $1 RETURNING *`, [victim.seq])).rows);
    expect(await verify.walkChain()).toMatchObject({
      ok: false,
      firstBadSeq: victim.seq,
      problem: expect.stringMatching(`Event ${victim.seq} is missing: it was removed`),
    });
    // Renumbering the rest to hide the gap breaks the links instead.
    await asSuperuser((c) => shift(c, victim.seq! + 1n, -1));
    expect(await verify.walkChain()).toMatchObject({ ok: false, firstBadSeq: victim.seq, problem: expect.stringMatching(/does not follow|was altered/) });
    await asSuperuser(async (c) => {
      await shift(c, victim.seq!, 1);
      const columns = Object.keys(row);
      await c.query(
        `INSERT INTO "AuditEvent" (${columns.map((k) => `"${k}"`).join(",")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(",")})`,
        columns.map((k) => (k === "data" ? JSON.stringify(row[k]) : row[k])),
      );
    });
    expect((await verify.walkChain()).ok).toBe(true);
  });

  it("names an event a superuser inserted, even with the chain head moved to match", async () => {
    const last = await fx.db.auditEvent.findFirstOrThrow({ orderBy: { seq: "desc" } });
    const fake = { ...last, seq: last.seq! + 1n, action: "request.approved", actorEmail: "mallory@example.com", prevHash: last.hash, hash: "f".repeat(64) };
    await asSuperuser(async (c) => {
      await c.query(
        `INSERT INTO "AuditEvent" (seq, "occurredAt", "actorType", "actorEmail", action, data, "prevHash", hash) VALUES ($1, now(), 'human', $2, $3, '{}', $4, $5)`,
        [fake.seq, fake.actorEmail, fake.action, fake.prevHash, fake.hash],
      );
      await c.query(`UPDATE "AuditChainHead" SET "lastSeq" = $1, "lastHash" = $2`, [fake.seq, fake.hash]);
    });
    expect(await verify.walkChain()).toMatchObject({ ok: false, firstBadSeq: fake.seq, problem: expect.stringMatching(/was altered/) });
    await asSuperuser(async (c) => {
      await c.query(`DELETE FROM "AuditEvent" WHERE seq = $1`, [fake.seq]);
      await c.query(`UPDATE "AuditChainHead" SET "lastSeq" = $1, "lastHash" = $2`, [last.seq, last.hash]);
    });
    expect((await verify.walkChain()).ok).toBe(true);
  });

  it("notices events cut from the end after a verification saw them", async () => {
    expect((await verify.verifyAuditChain("manual")).ok).toBe(true);
    const [last, previous] = await fx.db.auditEvent.findMany({ orderBy: { seq: "desc" }, take: 2 });
    await asSuperuser(async (c) => {
      await c.query(`DELETE FROM "AuditEvent" WHERE seq = $1`, [last!.seq]);
      await c.query(`UPDATE "AuditChainHead" SET "lastSeq" = $1, "lastHash" = $2`, [previous!.seq, previous!.hash]);
    });
    expect(await verify.walkChain()).toMatchObject({ ok: false, problem: expect.stringMatching(`but it was verified up to ${last!.seq}`) });
    await asSuperuser(async (c) => {
      // Put back exactly as it was, id included (an event's seal covers its id).
      const columns = Object.keys(last!);
      const values = columns.map((k) => (k === "data" ? JSON.stringify((last as Record<string, unknown>)[k]) : (last as Record<string, unknown>)[k]));
      await c.query(`INSERT INTO "AuditEvent" (${columns.map((k) => `"${k}"`).join(",")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(",")})`, values);
      await c.query(`UPDATE "AuditChainHead" SET "lastSeq" = $1, "lastHash" = $2`, [last!.seq, last!.hash]);
    });
    expect((await verify.walkChain()).ok).toBe(true);
  });

  it("npm run audit:verify prints the verdict and exits 1 on a broken chain", async () => {
    const run = () =>
      new Promise<{ code: number; out: string }>((resolve) =>
        execFile(path.join(process.cwd(), "node_modules/.bin/tsx"), ["scripts/audit.ts"], { env: { ...process.env } }, (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, out: stdout + stderr }),
        ),
      );
    const good = await run();
    expect(good.code).toBe(0);
    expect(good.out).toMatch(/Audit chain intact: \d+ events checked/);
    const target = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "request.created" }, orderBy: { seq: "asc" } });
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com' WHERE seq = $1`, [target.seq]));
    const bad = await run();
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`Audit chain BROKEN at event #${target.seq}`);
    await asSuperuser((c) => c.query(`UPDATE "AuditEvent" SET "actorEmail" = $2 WHERE seq = $1`, [target.seq, target.actorEmail]));
  });
});

describe("recording fails closed", () => {
  it("leaves the request untouched when its audit event cannot be written", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await fx.db.$executeRawUnsafe(`CREATE FUNCTION refuse_approval_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF NEW.action = 'request.approved' THEN RAISE EXCEPTION 'audit store unavailable'; END IF; RETURN NEW; END; $$`);
    await fx.db.$executeRawUnsafe(`CREATE TRIGGER refuse_approval BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION refuse_approval_events()`);
    try {
      await expect(engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" })).rejects.toThrow(/audit store unavailable/);
    } finally {
      await fx.db.$executeRawUnsafe(`DROP TRIGGER refuse_approval ON "AuditEvent"`);
      await fx.db.$executeRawUnsafe(`DROP FUNCTION refuse_approval_events()`);
    }
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).toMatchObject({ status: "pending", decidedAt: null });
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(0);
    expect(await fx.db.credential.count({ where: { requestId: request.id } })).toBe(0);
    expect((await fx.db.auditEvent.findMany({ where: { requestId: request.id } })).map((e) => e.action)).toEqual(["request.created"]);
    expect((await verify.walkChain()).ok).toBe(true);
  });
});

describe("events carry their context", () => {
  it("records the address, user agent, route and actor type of an API call", async () => {
    const { createPersonalToken } = await import("@/lib/identity/tokens");
    const { secret } = await createPersonalToken(alice, { name: "ctx", scopes: ["requests:write"], expiresInDays: 1 });
    const api = await startApiServer();
    try {
      const response = await fetch(`${api.url}/api/v1/requests`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${secret}`,
          "content-type": "application/json",
          "x-forwarded-for": "203.0.113.7, 10.0.0.1",
          "user-agent": "deploy-pipeline/2.1",
        },
        body: JSON.stringify({ workflowId: "temporary-access", input: validInput() }),
      });
      expect(response.status).toBe(201);
      const { id } = (await response.json()) as { id: string };
      const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: id, action: "request.created" } });
      expect(event).toMatchObject({
        // The last hop: the address the proxy nearest to Latchkey saw, not one the client wrote.
        ip: "10.0.0.1",
        userAgent: "deploy-pipeline/2.1",
        route: "POST /api/v1/requests",
        actorType: "personal_token",
        workflowId: "temporary-access",
        targetId: "payments-api-staging",
        environment: "staging",
        note: validInput().justification,
      });
    } finally {
      await api.close();
    }
    expect((await verify.walkChain()).ok).toBe(true);
  });
});
