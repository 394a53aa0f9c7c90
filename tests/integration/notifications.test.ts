import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/** A local receiver that records what it gets, and can be told to fail the first N calls. */
function receiver() {
  const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let failuresLeft = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        res.writeHead(503).end("busy");
        return;
      }
      received.push({ path: req.url ?? "", headers: req.headers, body });
      res.writeHead(200).end("ok");
    });
  });
  return {
    received,
    failNext: (n: number) => (failuresLeft = n),
    start: () => new Promise<string>((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

const hook = receiver();
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let deliver: typeof import("@/lib/notifications/deliver");
let alice: Principal, bob: Principal, olly: Principal;
const SECRET = "test-signing-secret";

beforeAll(async () => {
  const base = await hook.start();
  process.env.TEST_SLACK_URL = `${base}/slack`;
  process.env.TEST_WEBHOOK_URL = `${base}/webhook`;
  process.env.TEST_WEBHOOK_SECRET = SECRET;
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  deliver = await import("@/lib/notifications/deliver");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  olly = await fx.user("olly@example.com", ["oncall"]);
});
afterAll(async () => {
  await fx?.close();
  await hook.stop();
});

describe("notifications", () => {
  it("are written with the change they report and delivered to Slack and to a signed webhook", async () => {
    const { verify } = await import("@/lib/notifications/signature");
    hook.received.length = 0;
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const queued = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id }, orderBy: { channel: "asc" } });
    expect(queued.map((d) => [d.channel, d.event, d.status])).toEqual([
      ["audit-webhook", "pending", "pending"],
      ["team-slack", "pending", "pending"],
    ]);
    expect(await deliver.flushNotifications()).toMatchObject({ delivered: 2, failed: 0 });

    const slack = hook.received.find((r) => r.path === "/slack")!;
    expect(JSON.parse(slack.body)).toEqual({ text: expect.stringContaining("for alice@example.com waits for approval: http://localhost:3999/requests/") });
    const webhook = hook.received.find((r) => r.path === "/webhook")!;
    expect(JSON.parse(webhook.body)).toMatchObject({ event: "pending", request: { id: request.id, requester: "alice@example.com", status: "pending" } });
    const headers = { signature: String(webhook.headers["x-latchkey-signature"]), timestamp: String(webhook.headers["x-latchkey-timestamp"]) };
    expect(verify(SECRET, headers, webhook.body)).toBe(true);
    expect(verify("another-secret", headers, webhook.body)).toBe(false);
    expect(verify(SECRET, headers, webhook.body.replace("alice", "mallory"))).toBe(false);
    expect(verify(SECRET, headers, webhook.body, 300, Date.now() + 3600_000)).toBe(false);

    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect((await fx.db.notificationDelivery.findMany({ where: { requestId: request.id, event: "approved" } })).length).toBe(2);
  });

  it("retry with backoff when the receiver fails at first, and never block the request", async () => {
    await deliver.flushNotifications();
    hook.received.length = 0;
    hook.failNext(2);
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    expect(request.status).toBe("pending");
    await deliver.flushNotifications();
    const afterFirst = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id } });
    expect(afterFirst.every((d) => d.status === "pending" && d.attempts === 1 && d.lastError === "HTTP 503 from " + new URL(process.env.TEST_WEBHOOK_URL!).host)).toBe(true);
    expect(afterFirst.every((d) => d.nextAttemptAt.getTime() > Date.now())).toBe(true);
    // Nothing is due yet: a flush now sends nothing.
    expect(await deliver.flushNotifications()).toMatchObject({ delivered: 0 });
    await new Promise((r) => setTimeout(r, deliver.backoffSeconds(1) * 1000 + 200));
    expect(await deliver.flushNotifications()).toMatchObject({ delivered: 2 });
    const done = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id } });
    expect(done.map((d) => [d.status, d.attempts])).toEqual([
      ["delivered", 2],
      ["delivered", 2],
    ]);
  });

  it("a delivery that keeps failing is marked failed for admins after its last attempt", async () => {
    await deliver.flushNotifications();
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const { count } = await fx.db.notificationDelivery.updateMany({ where: { requestId: request.id }, data: { attempts: deliver.MAX_ATTEMPTS - 1 } });
    expect(count).toBe(2);
    hook.failNext(2);
    expect(await deliver.flushNotifications()).toMatchObject({ delivered: 0, failed: 2 });
    const { failedDeliveries } = await import("@/lib/notifications/admin");
    expect((await failedDeliveries()).filter((d) => d.requestId === request.id).map((d) => [d.channel, d.status, d.attempts]).sort()).toEqual([
      ["audit-webhook", "failed", deliver.MAX_ATTEMPTS],
      ["team-slack", "failed", deliver.MAX_ATTEMPTS],
    ]);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
  });

  it("break-glass, rejection, expiring soon and expiry are announced", async () => {
    const glass = await engine.breakGlass(olly, "temporary-access", validInput({ targetId: "staged", durationMinutes: 20 }), "Payments down, INC-9 sev1");
    expect(await fx.db.notificationDelivery.count({ where: { requestId: glass.id, event: "break-glass" } })).toBe(2);
    expect(await engine.notifyExpiring(glass.id)).toBe(true);
    expect(await engine.notifyExpiring(glass.id)).toBe(false);
    expect(await engine.expireGrant(glass.id, new Date(glass.expiresAt!.getTime() + 1000))).toBe("expired");
    expect((await fx.db.notificationDelivery.findMany({ where: { requestId: glass.id }, orderBy: { createdAt: "asc" } })).map((d) => `${d.channel}:${d.event}`).sort()).toEqual(
      ["audit-webhook:break-glass", "audit-webhook:expired", "audit-webhook:expiring", "team-slack:break-glass"].sort(),
    );
    const rejected = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: rejected.id, decision: "reject", comment: "no" });
    expect(await fx.db.notificationDelivery.count({ where: { requestId: rejected.id, event: "rejected" } })).toBe(2);
  });
});
