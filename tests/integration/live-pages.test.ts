// The versions live pages poll must move with every change made anywhere, and answer only
// the people who may read the request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let alice: Principal, bob: Principal, carol: Principal, erin: Principal;

beforeAll(async () => {
  fx = await engineFixture();
  alice = await fx.user("alice@example.com", ["engineering"]);
  erin = await fx.user("erin@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  carol = await fx.user("carol@example.com", ["audit"]);
});
afterAll(() => fx?.close());

describe("live versions", () => {
  it("a request's version moves with approval, reveal and expiry, and the list's with each of them too", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { requestVersion, myRequestsVersion } = await import("@/lib/approvals/live");
    const listBefore = (await myRequestsVersion(alice)).version;
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const pending = await requestVersion(alice, request.id);
    expect(pending.status).toBe("pending");
    const listPending = (await myRequestsVersion(alice)).version;
    expect(listPending).not.toBe(listBefore);
    // Reading changes nothing.
    expect(await requestVersion(alice, request.id)).toEqual(pending);
    expect((await myRequestsVersion(alice)).version).toBe(listPending);

    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
    const active = await requestVersion(alice, request.id);
    expect(active.status).toBe("active");
    expect(active.version).not.toBe(pending.version);
    const listActive = (await myRequestsVersion(alice)).version;
    expect(listActive).not.toBe(listPending);

    await engine.revealCredential(alice, request.id);
    const revealed = await requestVersion(alice, request.id);
    expect(revealed.version).not.toBe(active.version);

    // Expiry by the worker's path, as if the grant had run out.
    await fx.db.accessRequest.update({ where: { id: request.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await engine.expireGrant(request.id)).toBe("expired");
    const expired = await requestVersion(bob, request.id);
    expect(expired.status).toBe("expired");
    expect(expired.version).not.toBe(revealed.version);
    expect((await myRequestsVersion(alice)).version).not.toBe(listActive);
    // Another person's list does not move with Alice's requests.
    expect((await myRequestsVersion(erin)).version).toBe("0:0:0");
  });

  it("moves when an event with a lower id commits after a higher one (transactions that commit in the other order)", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { requestVersion, myRequestsVersion } = await import("@/lib/approvals/live");
    const request = await engine.createRequest(alice, "temporary-access", validInput({ justification: "Out of order commits" }));
    const pg = (await import("pg")).default;
    const late = new pg.Client({ connectionString: fx.url });
    await late.connect();
    const INSERT = `INSERT INTO "AuditEvent" (id, "occurredAt", "actorType", action, "requestId", data) VALUES (nextval('"AuditEvent_id_seq"'), now(), 'system', 'integration.state', $1, '{}')`;
    try {
      // The late transaction takes its id first but commits last.
      await late.query("BEGIN");
      await late.query(INSERT, [request.id]);
      await fx.db.$executeRawUnsafe(INSERT, request.id);
      const before = await requestVersion(alice, request.id);
      const listBefore = await myRequestsVersion(alice);
      await late.query("COMMIT");
      expect((await requestVersion(alice, request.id)).version).not.toBe(before.version);
      expect((await myRequestsVersion(alice)).version).not.toBe(listBefore.version);
    } finally {
      await late.end();
    }
  });

  it("answers the requester, the approvers of its stages and auditors; anyone else gets not found", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { requestVersion } = await import("@/lib/approvals/live");
    const request = await engine.createRequest(alice, "temporary-access", validInput({ justification: "Second request for the live test" }));
    for (const who of [alice, bob, carol]) expect((await requestVersion(who, request.id)).status).toBe("pending");
    await expect(requestVersion(erin, request.id)).rejects.toMatchObject({ code: "not_found" });
    await expect(requestVersion(alice, "no-such-request")).rejects.toMatchObject({ code: "not_found" });
  });
});
