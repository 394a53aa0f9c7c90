import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

let fx: Awaited<ReturnType<typeof engineFixture>>;

beforeAll(async () => {
  fx = await engineFixture();
});
afterAll(() => fx?.close());

async function waitForStatus(requestId: string, status: string, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const row = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: requestId } });
    if (row.status === status) return Date.now();
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`request ${requestId} did not become ${status} within ${timeoutMs} ms`);
}

describe("expiry by the worker", () => {
  it("expires a grant when its time is up with nobody acting, and survives a worker restart", async () => {
    const engine = await import("@/lib/approvals/engine");
    const { startWorker } = await import("@/lib/jobs/worker");
    const alice = await fx.user("alice@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);

    // Grants are whole minutes in the form; shorten these two to seconds so the test does not wait a minute.
    const first = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "scratch", durationMinutes: 1 }));
    const second = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "scratch", durationMinutes: 1 }));
    await fx.db.accessRequest.updateMany({ where: { id: { in: [first.id, second.id] } }, data: { durationSeconds: 3 } });

    let worker = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    const a = await engine.decide(bob, { requestId: first.id, decision: "approve", comment: "" });
    const b = await engine.decide(bob, { requestId: second.id, decision: "approve", comment: "" });
    expect(a.status).toBe("active");

    const expiredAt = await waitForStatus(first.id, "expired", 20_000);
    expect(expiredAt).toBeGreaterThanOrEqual(a.expiresAt!.getTime());

    // The second grant falls due while no worker runs; the next worker still expires it.
    await worker.stop({ graceful: false, wait: true });
    await new Promise((r) => setTimeout(r, Math.max(0, b.expiresAt!.getTime() - Date.now()) + 500));
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: second.id } })).status).toBe("active");
    worker = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
    await waitForStatus(second.id, "expired", 20_000);
    await worker.stop({ graceful: false, wait: true });

    for (const id of [first.id, second.id]) {
      const expiry = await fx.db.auditEvent.findMany({ where: { requestId: id, action: "grant.expired" } });
      expect(expiry).toHaveLength(1);
      expect(expiry[0]).toMatchObject({ actorType: "system", fromStatus: "active", toStatus: "expired" });
      expect((await fx.db.credential.findUniqueOrThrow({ where: { requestId: id } })).revokedAt).not.toBeNull();
    }
  });
});
