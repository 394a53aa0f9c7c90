import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startFakeSlack, type FakeSlack, type PostedMessage } from "../helpers/fake-slack";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The Slack app end to end: the engine writes deliveries, the outbox sends them through
 * Slack's own client to a fake Slack over HTTP, and clicks signed as Slack signs them reach
 * the interactivity route, which decides through the engine.
 */

const TOKEN = "xoxb-1234-5678-latchkeytest";
const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
let slack: FakeSlack;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let deliver: typeof import("@/lib/notifications/deliver");
let POST: (request: Request) => Promise<Response>;
let alice: Principal, bob: Principal;

beforeAll(async () => {
  slack = await startFakeSlack({
    token: TOKEN,
    signingSecret: SIGNING_SECRET,
    channels: ["C0APPROVALS", "C0PAYMENTS"],
    users: [
      { id: "U0ALICE", email: "alice@example.com" },
      { id: "U0BOB", email: "Bob@Example.com" },
      { id: "U0CAROL", email: "carol@example.com" },
      { id: "U0DAVE", email: "dave@example.com" },
      { id: "U0EVE", email: "eve@example.com", confirmed: false },
      { id: "U0MALLORY", email: "mallory@elsewhere.example" },
      { id: "U0HIDDEN", email: null },
    ],
  });
  fx = await engineFixture({ LATCHKEY_SLACK_BOT_TOKEN: TOKEN, LATCHKEY_SLACK_SIGNING_SECRET: SIGNING_SECRET, LATCHKEY_SLACK_API_URL: slack.apiUrl });
  engine = await import("@/lib/approvals/engine");
  deliver = await import("@/lib/notifications/deliver");
  ({ POST } = await import("@/app/api/slack/interactions/route"));
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  await fx.user("carol@example.com", ["platform-admins"]);
  await fx.user("dave@example.com", ["engineering"]);
  await fx.user("eve@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  await slack?.stop();
});

const interact = (signed: { body: string; headers: Record<string, string> }) =>
  POST(new Request("http://localhost:3999/api/slack/interactions", { method: "POST", headers: signed.headers, body: signed.body }));

/** Sends everything due, as the worker does. */
async function flush() {
  return deliver.flushNotifications();
}

const messageAbout = (requestId: string, channel: string): PostedMessage | undefined =>
  slack.inChannel(channel).find((m) => m.metadata?.event_payload.request_id === requestId);
const buttonsOf = (m: PostedMessage) =>
  m.blocks.filter((b) => b.type === "actions").flatMap((b) => (b.elements as { action_id: string }[]).map((e) => e.action_id));
const textOf = (m: PostedMessage) => JSON.stringify(m.blocks);
const ephemeralFor = (responseUrl: string) => slack.ephemeral.filter((e) => e.responseUrl === responseUrl).map((e) => e.body);

async function pendingRequest(who: Principal = alice, overrides: Record<string, unknown> = {}) {
  const request = await engine.createRequest(who, "temporary-access", validInput(overrides));
  await flush();
  return request;
}

describe("the Slack app", () => {
  it("posts a waiting request to each channel the target names, as Block Kit with buttons, and a signed Approve click approves it", async () => {
    const request = await pendingRequest();
    const deliveries = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id }, orderBy: { channel: "asc" } });
    expect(deliveries.map((d) => [d.channel, d.status])).toEqual([
      ["slack:C0APPROVALS", "delivered"],
      ["slack:C0PAYMENTS", "delivered"],
    ]);
    for (const channel of ["C0APPROVALS", "C0PAYMENTS"]) {
      const message = messageAbout(request.id, channel)!;
      expect(message, channel).toBeDefined();
      // The delivery's id travels in the message's metadata, so a reader can drop a duplicate post.
      expect(message.metadata).toEqual({
        event_type: "latchkey_request",
        event_payload: { request_id: request.id, delivery_id: deliveries.find((d) => d.channel === `slack:${channel}`)!.id },
      });
      const text = textOf(message);
      for (const part of [
        "alice@example.com asks for",
        "payments-api (staging)",
        "*Access*\\nread",
        "*Duration*\\n1 h",
        "Investigating INC-1234: payment retries failing",
        "Stage 1 of 1: *Approval*, approvers from engineering-leads, quorum",
        `http://localhost:3999/requests/${request.id}`,
      ]) {
        expect(text, `${channel}: ${part}`).toContain(part);
      }
      expect(buttonsOf(message)).toEqual(["latchkey_approve", "latchkey_reject", "latchkey_open"]);
    }

    const click = slack.click("U0BOB", "latchkey_approve", request.id);
    const answer = await interact(click);
    expect(answer.status).toBe(200);
    expect(ephemeralFor(click.responseUrl)).toEqual([]);
    const decided = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id }, include: { decisions: true } });
    expect(decided.status).toBe("active");
    expect(decided.decisions.map((d) => [d.approverId, d.decision])).toEqual([[bob.id, "approve"]]);
    const approved = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "request.approved" } });
    expect(approved.actorId).toBe(bob.id);
    expect(approved.data).toMatchObject({ via: "slack", slackUserId: "U0BOB", slackTeamId: slack.team.id });

    await flush();
    for (const channel of ["C0APPROVALS", "C0PAYMENTS"]) {
      const message = messageAbout(request.id, channel)!;
      expect(message.updates, channel).toBe(1);
      expect(textOf(message)).toContain("*Approved* by bob@example.com");
      expect(buttonsOf(message)).toEqual(["latchkey_open"]);
    }
    // The requester is told in a direct message.
    expect(slack.dmsTo("U0ALICE").at(-1)!.text).toBe(
      `Your request for Temporary access on payments-api (staging) was approved by bob@example.com. http://localhost:3999/requests/${request.id}`,
    );
  });

  it("refuses requests Slack did not sign, with a stale timestamp, or with a forged signature, and changes nothing", async () => {
    const request = await pendingRequest();
    const fresh = slack.click("U0BOB", "latchkey_approve", request.id);
    const cases: [string, { body: string; headers: Record<string, string> }, RegExp][] = [
      ["unsigned", { body: fresh.body, headers: { "content-type": fresh.headers["content-type"] } }, /not signed/],
      ["wrong secret", slack.signed(JSON.parse(new URLSearchParams(fresh.body).get("payload")!), undefined, "another-signing-secret-0000"), /does not match/],
      ["body changed after signing", { ...fresh, body: fresh.body.replace("U0BOB", "U0CAROL") }, /does not match/],
      ["six minutes old", slack.click("U0BOB", "latchkey_approve", request.id, Math.floor(Date.now() / 1000) - 360), /more than five minutes old/],
      ["timestamp not a number", { ...fresh, headers: { ...fresh.headers, "x-slack-request-timestamp": "soon" } }, /not a Unix time/],
    ];
    for (const [name, signed, message] of cases) {
      const answer = await interact(signed);
      expect(answer.status, name).toBe(401);
      expect(await answer.text(), name).toMatch(message);
    }
    // Signed by Slack but not a payload Latchkey understands: a clear 400, never a 500.
    const malformed = await interact(slack.signed({ type: "block_actions", user: { id: "U0BOB" } }));
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toMatch(/block_actions payload is malformed: team/);
    const { signSlackRequest } = await import("@/lib/integrations/slack/signature");
    const now = Math.floor(Date.now() / 1000);
    const signedRaw = (body: string) => ({
      body,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": String(now),
        "x-slack-signature": signSlackRequest(SIGNING_SECRET, now, body),
      },
    });
    const garbled = await interact(signedRaw("payload=%7Bnot-json"));
    expect([garbled.status, await garbled.text()]).toEqual([400, 'The "payload" field is not JSON.\n']);
    const empty = await interact(signedRaw("token=abc"));
    expect([empty.status, await empty.text()]).toEqual([400, 'Expected a form body with a "payload" field.\n']);
    // Past the 64 KiB every route reads: refused before the signature is checked, whether the size is declared or only streamed.
    const huge = signedRaw(`${fresh.body}&pad=${"x".repeat(70 * 1024)}`);
    const declared = await interact(huge);
    expect([declared.status, await declared.text()]).toEqual([413, "The body is larger than 64 KiB.\n"]);
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 1;
        if (sent > 1_000) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const streamed = await POST(
      new Request("http://localhost:3999/api/slack/interactions", { method: "POST", headers: huge.headers, body: stream, duplex: "half" } as RequestInit),
    );
    expect([streamed.status, await streamed.text()]).toEqual([413, "The body is larger than 64 KiB.\n"]);
    // It stopped reading at the limit instead of taking all 16 MB.
    expect(sent).toBeLessThan(10);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(0);
  });

  it("tells a Slack user Latchkey cannot map, or who may not decide, why in an ephemeral message, and nothing changes", async () => {
    const own = await pendingRequest(bob);
    const request = await pendingRequest();
    // A service identity in an approver group, and a Slack account someone gave its address: services act through API tokens only.
    await fx.db.user.create({
      data: { email: "release-bot@example.com", name: "release-bot", kind: "service", groups: ["engineering-leads"], roles: ["requester", "approver"] },
    });
    slack.addUser({ id: "U0ROBOT", email: "release-bot@example.com" });
    const cases: [string, string, RegExp][] = [
      ["U0ROBOT", request.id, /No Latchkey account has the e-mail address release-bot@example\.com/],
      ["U0MALLORY", request.id, /No Latchkey account has the e-mail address mallory@elsewhere\.example/],
      ["U0EVE", request.id, /Slack has not confirmed your e-mail address eve@example\.com/],
      ["U0HIDDEN", request.id, /cannot see your Slack e-mail address/],
      ["U0NOBODY", request.id, /could not ask Slack who you are \(user_not_found\)/],
      ["U0DAVE", request.id, /Your role does not allow approving requests\./],
      ["U0BOB", own.id, /You cannot approve your own request\./],
      ["U0ALICE", request.id, /You cannot approve your own request\./],
    ];
    for (const [user, requestId, message] of cases) {
      const click = slack.click(user, "latchkey_approve", requestId);
      const answer = await interact(click);
      expect(answer.status, user).toBe(200);
      const told = ephemeralFor(click.responseUrl);
      expect(told, user).toHaveLength(1);
      expect(told[0], user).toMatchObject({ response_type: "ephemeral", replace_original: false, text: expect.stringMatching(message) });
    }
    for (const id of [own.id, request.id]) {
      expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id } })).status).toBe("pending");
      expect(await fx.db.approval.count({ where: { requestId: id } })).toBe(0);
    }
    // One decision per party: a second click on a decided request is refused the same way.
    const first = slack.click("U0BOB", "latchkey_approve", request.id);
    await interact(first);
    const again = slack.click("U0CAROL", "latchkey_approve", request.id);
    await interact(again);
    expect(ephemeralFor(again.responseUrl)[0]!.text).toMatch(/already active; there is nothing left to decide/);
  });

  it("of two approvers clicking Approve at once, one decides and the other is told the request is no longer pending", async () => {
    await fx.user("quentin@example.com", ["quorum"]);
    slack.addUser({ id: "U0QUENTIN", email: "quentin@example.com" });
    const request = await pendingRequest();
    const clicks = [slack.click("U0BOB", "latchkey_approve", request.id), slack.click("U0QUENTIN", "latchkey_approve", request.id)];
    const answers = await Promise.all(clicks.map(interact));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(await fx.db.approval.count({ where: { requestId: request.id } })).toBe(1);
    expect(await fx.db.auditEvent.count({ where: { requestId: request.id, action: "request.approved" } })).toBe(1);
    const told = clicks.flatMap((c) => ephemeralFor(c.responseUrl));
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toMatch(/This request is already active; there is nothing left to decide\./);
  });

  it("opens a modal for Reject, requires the comment, and rejects with it; the message shows who rejected and why", async () => {
    const request = await pendingRequest();
    // Someone who may not decide is told at the click, before writing a reason.
    const outsider = slack.click("U0CAROL", "latchkey_reject", request.id);
    await interact(outsider);
    expect(ephemeralFor(outsider.responseUrl)[0]!.text).toBe('Only members of engineering-leads, quorum may approve the stage "Approval".');
    expect(slack.views.some((v) => v.triggerId === outsider.triggerId)).toBe(false);
    const click = slack.click("U0BOB", "latchkey_reject", request.id);
    expect((await interact(click)).status).toBe(200);
    const opened = slack.views.find((v) => v.triggerId === click.triggerId)!;
    expect(opened.view).toMatchObject({ type: "modal", callback_id: "latchkey_reject", private_metadata: JSON.stringify({ requestId: request.id }) });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");

    const empty = await interact(slack.submit("U0BOB", opened.view, "   "));
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ response_action: "errors", errors: { comment: "Say why you reject this request." } });
    // Someone else's submission of the same modal is judged as theirs: the requester cannot reject their own request.
    const forged = await interact(slack.submit("U0ALICE", opened.view, "no"));
    expect(await forged.json()).toEqual({ response_action: "errors", errors: { comment: "You cannot approve your own request." } });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");

    const done = await interact(slack.submit("U0BOB", opened.view, "Use the read replica <!channel>"));
    expect(done.status).toBe(200);
    expect(await done.text()).toBe("");
    const rejected = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id }, include: { decisions: true } });
    expect(rejected.status).toBe("rejected");
    expect(rejected.decisions.map((d) => [d.approverId, d.decision, d.comment])).toEqual([[bob.id, "reject", "Use the read replica <!channel>"]]);
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: request.id, action: "request.rejected" } });
    expect(event.data).toMatchObject({ via: "slack", slackUserId: "U0BOB", slackTeamId: slack.team.id, comment: "Use the read replica <!channel>" });

    await flush();
    const message = messageAbout(request.id, "C0APPROVALS")!;
    // The comment is escaped: it cannot ping the channel.
    expect(textOf(message)).toContain("*Rejected* by bob@example.com: “Use the read replica &lt;!channel&gt;”");
    expect(buttonsOf(message)).toEqual(["latchkey_open"]);
    expect(slack.dmsTo("U0ALICE").at(-1)!.text).toContain("was rejected by bob@example.com: “Use the read replica <!channel>”");
    // A click on the rejected request's stale buttons changes nothing, and opens no modal.
    const late = slack.click("U0BOB", "latchkey_reject", request.id);
    await interact(late);
    expect(ephemeralFor(late.responseUrl)[0]!.text).toMatch(/already rejected/);
    expect(slack.views.some((v) => v.triggerId === late.triggerId)).toBe(false);
  });

  it("updates every message when the request is decided in the portal, cancelled, or left to time out", async () => {
    const portal = await pendingRequest();
    await engine.decide(bob, { requestId: portal.id, decision: "approve", comment: "ok" });
    const cancelled = await pendingRequest();
    await engine.cancelRequest(alice, cancelled.id);
    const waiting = await pendingRequest();
    const timedOut = await engine.expirePending(waiting.id, new Date(Date.now() + 48 * 3600_000));
    expect(timedOut).toBe("expired");
    await flush();
    const expectations: [string, string][] = [
      [portal.id, "*Approved* by bob@example.com: “ok”"],
      [cancelled.id, "*Cancelled by the requester*"],
      [waiting.id, "Expired: nobody decided in time."],
    ];
    for (const [id, outcome] of expectations) {
      for (const channel of ["C0APPROVALS", "C0PAYMENTS"]) {
        const message = messageAbout(id, channel)!;
        expect(textOf(message), `${id} ${channel}`).toContain(outcome);
        expect(buttonsOf(message)).toEqual(["latchkey_open"]);
      }
    }
    expect(slack.dmsTo("U0ALICE").at(-1)!.text).toContain("Your request for Temporary access on payments-api (staging) has expired.");
  });

  it("shows no buttons, and refuses a forged click, where the target has not opted in", async () => {
    const request = await pendingRequest(alice, { targetId: "payments-api-production" });
    const message = messageAbout(request.id, "C0APPROVALS")!;
    expect(messageAbout(request.id, "C0PAYMENTS")).toBeUndefined();
    expect(buttonsOf(message)).toEqual(["latchkey_open"]);
    const click = slack.click("U0BOB", "latchkey_approve", request.id);
    await interact(click);
    expect(ephemeralFor(click.responseUrl)[0]!.text).toMatch(/Decisions in Slack are switched off for this target/);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
  });

  it("follows a request through its stages: the message names the stage that now waits", async () => {
    const request = await engine.createRequest(alice, "temporary-access", validInput({ targetId: "staged", durationMinutes: 30 }));
    await flush();
    expect(textOf(messageAbout(request.id, "C0APPROVALS")!)).toContain("Stage 1 of 2: *Team lead*");
    await interact(slack.click("U0BOB", "latchkey_approve", request.id));
    await flush();
    const message = messageAbout(request.id, "C0APPROVALS")!;
    expect(textOf(message)).toContain("Stage 2 of 2: *Platform and security*, approvers from platform-admins, security, 0 of 2 approvals so far");
    await interact(slack.click("U0CAROL", "latchkey_approve", request.id));
    await flush();
    expect(textOf(messageAbout(request.id, "C0APPROVALS")!)).toContain("1 of 2 approvals so far");
    expect(buttonsOf(messageAbout(request.id, "C0APPROVALS")!)).toContain("latchkey_approve");
  });

  it("posts a break-glass grant without buttons, for review in the portal", async () => {
    const olly = await fx.user("olly@example.com", ["oncall"]);
    const request = await engine.breakGlass(olly, "temporary-access", validInput({ targetId: "staged", durationMinutes: 30 }), "Payments are down, INC-99");
    await flush();
    const message = messageAbout(request.id, "C0APPROVALS")!;
    expect(textOf(message)).toContain("BREAK-GLASS: olly@example.com opened Temporary access on staged target");
    expect(textOf(message)).toContain("Opened with break-glass; an approver must review it in the portal.");
    expect(buttonsOf(message)).toEqual(["latchkey_open"]);
  });

  it("tells the requester by direct message before and when the grant expires, and skips one Slack does not know", async () => {
    const request = await pendingRequest();
    await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
    expect(await engine.notifyExpiring(request.id)).toBe(true);
    await flush();
    const expiresAt = (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).expiresAt!;
    const dms = slack
      .dmsTo("U0ALICE")
      .slice(-2)
      .map((m) => m.text);
    expect(dms[0]).toBe(
      `Your request for Temporary access on payments-api (staging) was approved by bob@example.com. http://localhost:3999/requests/${request.id}`,
    );
    expect(dms[1]).toBe(
      `Your access to Temporary access on payments-api (staging) expires at ${expiresAt.toISOString().slice(11, 16)} UTC. http://localhost:3999/requests/${request.id}`,
    );
    expect(await engine.expireGrant(request.id, new Date(expiresAt.getTime() + 1000))).toBe("expired");
    await flush();
    expect(slack.dmsTo("U0ALICE").at(-1)!.text).toContain("Your access to Temporary access on payments-api (staging) has expired.");
    // A requester without a Slack account: the lookup finds nobody, and the delivery ends without a message.
    const frank = await fx.user("frank@example.com", ["engineering"]);
    const theirs = await pendingRequest(frank);
    await engine.decide(bob, { requestId: theirs.id, decision: "approve", comment: "" });
    await flush();
    const dm = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: theirs.id, channel: "slack:dm" } });
    expect(dm.status).toBe("delivered");
    expect(slack.calls.filter((c) => c.method === "users.lookupByEmail").at(-1)).toEqual({
      method: "users.lookupByEmail",
      status: 200,
      error: "users_not_found",
    });
  });

  it("without the signing secret, posts messages without buttons and refuses every click", async () => {
    const { env } = await import("@/lib/env");
    const settings = env();
    settings.LATCHKEY_SLACK_SIGNING_SECRET = undefined;
    try {
      const request = await pendingRequest();
      expect(buttonsOf(messageAbout(request.id, "C0APPROVALS")!)).toEqual(["latchkey_open"]);
      const answer = await interact(slack.click("U0BOB", "latchkey_approve", request.id));
      expect([answer.status, await answer.text()]).toEqual([403, "The Slack app is off: set LATCHKEY_SLACK_BOT_TOKEN and LATCHKEY_SLACK_SIGNING_SECRET.\n"]);
      expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: request.id } })).status).toBe("pending");
    } finally {
      settings.LATCHKEY_SLACK_SIGNING_SECRET = SIGNING_SECRET;
    }
  });

  it("honours Slack's 429 Retry-After: the delivery waits that long, uncounted, and so do the other Slack deliveries", async () => {
    await flush();
    const before = slack.calls.length;
    slack.rateLimit("chat.postMessage", 7);
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    const result = await flush();
    expect(result.delivered).toBe(0);
    expect(slack.calls.slice(before)).toEqual([{ method: "chat.postMessage", status: 429, error: "ratelimited" }]);
    const rows = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id } });
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.status).toBe("pending");
      expect(row.attempts).toBe(0);
      expect((row.nextAttemptAt.getTime() - Date.now()) / 1000).toBeGreaterThan(5);
      expect((row.nextAttemptAt.getTime() - Date.now()) / 1000).toBeLessThanOrEqual(7);
    }
    expect(rows.find((r) => r.lastError)!.lastError).toBe("rate limited by Slack; retrying after 7 s");
    expect(result.retryAt!.getTime()).toBe(Math.min(...rows.map((r) => r.nextAttemptAt.getTime())));
    // Nothing is tried before Retry-After has passed.
    await flush();
    expect(slack.calls.length).toBe(before + 1);
    await fx.db.notificationDelivery.updateMany({ where: { requestId: request.id }, data: { nextAttemptAt: new Date() } });
    expect((await flush()).delivered).toBe(2);
    expect(messageAbout(request.id, "C0APPROVALS")).toBeDefined();
  });

  it("retries an outright Slack error with backoff and names it on Admin → Integrations", async () => {
    const { integrationStatuses } = await import("@/lib/integrations/status");
    const status = (await integrationStatuses()).find((s) => s.kind === "slack")!;
    expect(status).toMatchObject({ reachable: true, detail: "answered as latchkey in Latchkey Test", title: "Slack app (3 targets post to Slack)" });
    const request = await engine.createRequest(alice, "temporary-access", validInput());
    await fx.db.notificationDelivery.updateMany({
      where: { requestId: request.id, channel: "slack:C0PAYMENTS" },
      data: { payload: { kind: "message", requestId: request.id, channel: "C0GONE", post: true } },
    });
    await flush();
    const failed = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, channel: "slack:C0PAYMENTS" } });
    expect(failed).toMatchObject({ status: "pending", attempts: 1, lastError: "Slack chat.postMessage: not_in_channel" });
    const after = (await integrationStatuses()).find((s) => s.kind === "slack")!;
    expect(after.lastErrors[0]!.message).toBe("slack:C0PAYMENTS: Slack chat.postMessage: not_in_channel");
    // A token Slack does not accept shows as unreachable, with Slack's own error code.
    const { env } = await import("@/lib/env");
    env().LATCHKEY_SLACK_BOT_TOKEN = "xoxb-0000-revoked";
    try {
      expect((await integrationStatuses()).find((s) => s.kind === "slack")).toMatchObject({ reachable: false, detail: "Slack auth.test: invalid_auth" });
    } finally {
      env().LATCHKEY_SLACK_BOT_TOKEN = TOKEN;
    }
  });
});
