import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * README "Slack app": "Each posted message carries the delivery's id in its metadata, the
 * same on every retry, so a duplicate left by a crash can be recognised." Here Slack posts
 * the message but its answer never reaches Latchkey (the connection drops after Slack has
 * answered, as when the process dies between Slack's answer and the commit): the outbox
 * retries, and both messages in the channel name the same delivery, so a reader can drop one.
 */
const TOKEN = "xoxb-1234-5678-latchkeytest";
const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
let slack: FakeSlack;
let lossy: http.Server;
let answersToLose = 0;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let deliver: typeof import("@/lib/notifications/deliver");
let alice: Principal;

/** Relays calls to the fake Slack; the next `answersToLose` chat.postMessage answers are dropped after Slack has acted. */
function startLossyRelay(target: string): Promise<string> {
  lossy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const forward = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
        const body: Buffer[] = [];
        answer.on("data", (c: Buffer) => body.push(c));
        answer.on("end", () => {
          if (req.url!.endsWith("/chat.postMessage") && answersToLose > 0) {
            answersToLose -= 1;
            return req.socket.destroy();
          }
          res.writeHead(answer.statusCode!, answer.headers).end(Buffer.concat(body));
        });
      });
      forward.end(Buffer.concat(chunks));
    });
  });
  return new Promise((resolve) => lossy.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(lossy.address() as AddressInfo).port}`)));
}

beforeAll(async () => {
  slack = await startFakeSlack({
    token: TOKEN,
    signingSecret: SIGNING_SECRET,
    channels: ["C0APPROVALS", "C0PAYMENTS"],
    users: [
      { id: "U0ALICE", email: "alice@example.com" },
      { id: "U0BOB", email: "bob@example.com" },
    ],
  });
  const relay = await startLossyRelay(new URL(slack.apiUrl).origin);
  fx = await engineFixture({ LATCHKEY_SLACK_BOT_TOKEN: TOKEN, LATCHKEY_SLACK_SIGNING_SECRET: SIGNING_SECRET, LATCHKEY_SLACK_API_URL: `${relay}/api/` });
  engine = await import("@/lib/approvals/engine");
  deliver = await import("@/lib/notifications/deliver");
  alice = await fx.user("alice@example.com", ["engineering"]);
  await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  await slack?.stop();
  lossy?.closeAllConnections();
  await new Promise((r) => lossy?.close(r));
});

describe("a Slack post whose answer was lost", () => {
  it("is retried, and the duplicate it leaves carries the same delivery id as the first", { timeout: 60_000 }, async () => {
    answersToLose = 1;
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const deliveries = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id, channel: { startsWith: "slack:" } } });
    expect(deliveries.length).toBeGreaterThanOrEqual(1);
    await deliver.flushNotifications();

    const about = () => [...slack.messages.values()].filter((m) => m.metadata?.event_payload.request_id === request.id);
    const lost = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, channel: { startsWith: "slack:" }, status: "pending" } });
    expect(lost.attempts).toBe(1);
    expect(lost.lastError).toBeTruthy();
    // Slack did post it: the message is in the channel, with the delivery's id.
    const channel = lost.channel.slice("slack:".length);
    expect(
      about()
        .filter((m) => m.channel === channel)
        .map((m) => m.metadata!.event_payload.delivery_id),
    ).toEqual([lost.id]);

    // The retry, once its backoff is over.
    await fx.db.notificationDelivery.update({ where: { id: lost.id }, data: { nextAttemptAt: new Date(Date.now() - 1000) } });
    await deliver.flushNotifications();
    expect(await fx.db.notificationDelivery.findUniqueOrThrow({ where: { id: lost.id } })).toMatchObject({ status: "delivered", attempts: 2, lastError: null });
    const posted = about().filter((m) => m.channel === channel);
    expect(posted).toHaveLength(2);
    expect(posted.map((m) => m.metadata)).toEqual([
      { event_type: "latchkey_request", event_payload: { request_id: request.id, delivery_id: lost.id } },
      { event_type: "latchkey_request", event_payload: { request_id: request.id, delivery_id: lost.id } },
    ]);
    // Latchkey keeps the message it heard back about, and updates that one in place from then on.
    const kept = await fx.db.slackMessage.findMany({ where: { requestId: request.id, channel } });
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatchObject({ deliveryId: lost.id, ts: posted[1]!.ts });
    // Every other delivery of the request went out once.
    for (const d of deliveries.filter((d) => d.id !== lost.id)) {
      expect(about().filter((m) => m.metadata!.event_payload.delivery_id === d.id)).toHaveLength(1);
    }
  });
});
