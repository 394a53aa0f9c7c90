import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * README "Notifications": the worker delivers "with retries and exponential backoff ...
 * After 6 failed attempts a delivery is marked failed and listed under Notifications
 * (admins)", and `webhook-id` is "the same on every retry of one delivery". Here a receiver
 * that always fails sees every attempt: six, each later than the last by a growing wait,
 * all with one webhook-id; then none more, and the delivery is listed as failed.
 */
const attempts: { path: string; id: string; at: number }[] = [];
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    attempts.push({ path: req.url ?? "", id: String(req.headers["webhook-id"] ?? ""), at: Date.now() });
    res.writeHead(503).end("down for maintenance");
  });
});
let fx: Awaited<ReturnType<typeof engineFixture>>;
let deliver: typeof import("@/lib/notifications/deliver");

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.TEST_SLACK_URL = `${base}/slack`;
  process.env.TEST_WEBHOOK_URL = `${base}/webhook`;
  process.env.TEST_WEBHOOK_SECRET = `whsec_${randomBytes(32).toString("base64")}`;
  fx = await engineFixture();
  deliver = await import("@/lib/notifications/deliver");
});
afterAll(async () => {
  await fx?.close();
  await new Promise((resolve) => server.close(resolve));
});

describe("a webhook delivery that keeps failing", () => {
  it("is tried six times with one webhook-id and a growing wait, then marked failed for admins and tried no more", { timeout: 60_000 }, async () => {
    const engine = await import("@/lib/approvals/engine");
    const alice = await fx.user("alice@example.com", ["engineering"]);
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const delivery = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, channel: "audit-webhook" } });
    const waits: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      const before = Date.now();
      await deliver.flushNotifications();
      const row = await fx.db.notificationDelivery.findUniqueOrThrow({ where: { id: delivery.id } });
      expect(row.attempts).toBe(attempt);
      expect(row.lastError).toMatch(/503/);
      if (attempt < 6) {
        expect(row.status).toBe("pending");
        waits.push(row.nextAttemptAt.getTime() - before);
        // The wait is over.
        await fx.db.notificationDelivery.update({ where: { id: delivery.id }, data: { nextAttemptAt: new Date(Date.now() - 1000) } });
      } else expect(row.status).toBe("failed");
    }
    const mine = attempts.filter((a) => a.path === "/webhook" && a.id === `msg_${delivery.id}`);
    expect(mine).toHaveLength(6);
    expect(attempts.filter((a) => a.path === "/webhook").map((a) => a.id)).toEqual(Array(6).fill(`msg_${delivery.id}`));
    for (let i = 1; i < waits.length; i++) expect(waits[i]).toBeGreaterThan(waits[i - 1]!);

    // Failed is final: a later flush does not try it again.
    await fx.db.notificationDelivery.update({ where: { id: delivery.id }, data: { nextAttemptAt: new Date(Date.now() - 1000) } });
    await deliver.flushNotifications();
    expect(attempts.filter((a) => a.path === "/webhook")).toHaveLength(6);
    const { failedDeliveries } = await import("@/lib/notifications/admin");
    expect((await failedDeliveries()).find((d) => d.id === delivery.id)).toMatchObject({ channel: "audit-webhook", status: "failed", attempts: 6 });
  });
});
