import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * A local receiver that records what it gets, and can be told to fail the first N calls.
 * Every attempt, failed or not, is kept in `attempts`.
 */
function receiver() {
  const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const attempts: { path: string; headers: http.IncomingHttpHeaders; body: string; answered: number }[] = [];
  let failuresLeft = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      attempts.push({ path: req.url ?? "", headers: req.headers, body, answered: failuresLeft > 0 ? 503 : 200 });
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
    attempts,
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
const whsec = () => `whsec_${randomBytes(32).toString("base64")}`;
/** The current secret and the previous one, as during a rotation. */
const SECRET = whsec();
const PREVIOUS = whsec();

/** Verifies with the specification's own library, not Latchkey's code; throws when it does not verify. */
const standardVerify = (secret: string, delivery: { headers: http.IncomingHttpHeaders; body: string }) =>
  new Webhook(secret).verify(delivery.body, delivery.headers as Record<string, string>);

beforeAll(async () => {
  const base = await hook.start();
  process.env.TEST_SLACK_URL = `${base}/slack`;
  process.env.TEST_WEBHOOK_URL = `${base}/webhook`;
  process.env.TEST_WEBHOOK_SECRET = `${SECRET},${PREVIOUS}`;
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
    const { verifyWebhook: verify } = await import("@/lib/notifications/signature");
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
    const delivery = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, channel: "audit-webhook" } });
    expect(webhook.headers["webhook-id"]).toBe(`msg_${delivery.id}`);
    expect(Math.abs(Number(webhook.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    // One v1 signature per secret: receivers holding the new or the old one both verify.
    expect(String(webhook.headers["webhook-signature"])).toMatch(/^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/);
    expect(standardVerify(SECRET, webhook)).toMatchObject({ event: "pending", request: { id: request.id } });
    expect(standardVerify(PREVIOUS, webhook)).toMatchObject({ event: "pending" });
    expect(() => standardVerify(whsec(), webhook)).toThrow();
    expect(() => standardVerify(SECRET, { ...webhook, body: webhook.body.replace("alice", "mallory") })).toThrow();
    expect(() => standardVerify(SECRET, { ...webhook, headers: { ...webhook.headers, "webhook-id": "msg_other" } })).toThrow();
    // Latchkey's own verify agrees with the library.
    const headers = Object.fromEntries(["webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [h, String(webhook.headers[h])]));
    expect(verify(SECRET, headers, webhook.body)).toBe(true);
    expect(verify(PREVIOUS, headers, webhook.body)).toBe(true);
    expect(verify(whsec(), headers, webhook.body)).toBe(false);
    expect(verify(SECRET, headers, webhook.body.replace("alice", "mallory"))).toBe(false);
    expect(verify(SECRET, headers, webhook.body, 300, Date.now() + 3600_000)).toBe(false);

    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect((await fx.db.notificationDelivery.findMany({ where: { requestId: request.id, event: "approved" } })).length).toBe(2);
  });

  it("retry with backoff when the receiver fails at first, and never block the request", async () => {
    await deliver.flushNotifications();
    hook.received.length = 0;
    hook.attempts.length = 0;
    hook.failNext(2);
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    expect(request.status).toBe("pending");
    await deliver.flushNotifications();
    const afterFirst = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id } });
    expect(
      afterFirst.every((d) => d.status === "pending" && d.attempts === 1 && d.lastError === "HTTP 503 from " + new URL(process.env.TEST_WEBHOOK_URL!).host),
    ).toBe(true);
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

    // The failed attempt and its retry carry the same webhook-id, each freshly signed: a
    // receiver that keeps the ids it has handled acts on the event once.
    const webhookAttempts = hook.attempts.filter((a) => a.path === "/webhook" && JSON.parse(a.body).request.id === request.id);
    expect(webhookAttempts.map((a) => a.answered)).toEqual([503, 200]);
    const ids = webhookAttempts.map((a) => a.headers["webhook-id"]);
    expect(ids[0]).toBe(`msg_${done.find((d) => d.channel === "audit-webhook")!.id}`);
    expect(ids[1]).toBe(ids[0]);
    const handled = new Set<string>();
    for (const attempt of webhookAttempts) {
      standardVerify(SECRET, attempt);
      handled.add(String(attempt.headers["webhook-id"]));
    }
    expect(handled.size).toBe(1);
    // Another delivery (the approval of the same request) has another id.
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await deliver.flushNotifications()).toMatchObject({ delivered: 2 });
    const approved = hook.attempts.filter(
      (a) => a.path === "/webhook" && JSON.parse(a.body).event === "approved" && JSON.parse(a.body).request.id === request.id,
    );
    expect(approved).toHaveLength(1);
    expect(approved[0]!.headers["webhook-id"]).toMatch(/^msg_/);
    expect(approved[0]!.headers["webhook-id"]).not.toBe(ids[0]);
  });

  it("a delivery that keeps failing is marked failed for admins after its last attempt", async () => {
    await deliver.flushNotifications();
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const { count } = await fx.db.notificationDelivery.updateMany({ where: { requestId: request.id }, data: { attempts: deliver.MAX_ATTEMPTS - 1 } });
    expect(count).toBe(2);
    hook.failNext(2);
    expect(await deliver.flushNotifications()).toMatchObject({ delivered: 0, failed: 2 });
    const { failedDeliveries } = await import("@/lib/notifications/admin");
    expect(
      (await failedDeliveries())
        .filter((d) => d.requestId === request.id)
        .map((d) => [d.channel, d.status, d.attempts])
        .sort(),
    ).toEqual([
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
    expect(
      (await fx.db.notificationDelivery.findMany({ where: { requestId: glass.id }, orderBy: { createdAt: "asc" } }))
        .map((d) => `${d.channel}:${d.event}`)
        .sort(),
    ).toEqual(["audit-webhook:break-glass", "audit-webhook:expired", "audit-webhook:expiring", "team-slack:break-glass"].sort());
    const rejected = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: rejected.id, decision: "reject", comment: "no" });
    expect(await fx.db.notificationDelivery.count({ where: { requestId: rejected.id, event: "rejected" } })).toBe(2);
  });

  it("refuse a signing secret that is not whsec_ base64, naming the variable and the secret", async () => {
    const { parseEnv } = await import("@/lib/env");
    const base = {
      DATABASE_URL: "postgresql://x@localhost/x",
      NEXTAUTH_SECRET: "s".repeat(32),
      LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      OIDC_ISSUER: "http://idp.example",
      OIDC_CLIENT_ID: "c",
      OIDC_CLIENT_SECRET: "s",
    };
    expect(parseEnv({ ...base, LATCHKEY_AUDIT_WEBHOOK_SECRET: `${whsec()}, ${whsec()}` }).LATCHKEY_AUDIT_WEBHOOK_SECRET).toBeTruthy();
    expect(() => parseEnv({ ...base, LATCHKEY_AUDIT_WEBHOOK_SECRET: "plain-text-secret" })).toThrow(
      /LATCHKEY_AUDIT_WEBHOOK_SECRET: secret 1 of 1 must be "whsec_" followed by base64/,
    );
    expect(() => parseEnv({ ...base, LATCHKEY_AUDIT_WEBHOOK_SECRET: `${whsec()},whsec_c2hvcnQ=` })).toThrow(
      /LATCHKEY_AUDIT_WEBHOOK_SECRET: secret 2 of 2 must decode to 24 to 64 bytes, not 5/,
    );
    // The secret itself never appears in the message.
    expect(() => parseEnv({ ...base, LATCHKEY_AUDIT_WEBHOOK_SECRET: "plain-text-secret" })).not.toThrow(/plain-text-secret/);
  });
});
