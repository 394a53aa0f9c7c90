import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { smtpSink } from "../helpers/smtp-sink";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * E-mail notifications end to end: the engine queues them with the change, the outbox
 * sends them through nodemailer to a real SMTP server, and the tests read what arrived:
 * who got it (eligible approvers of the current stage, the requester), what it says in
 * text and HTML, the request's link, opt-out, and retries with a stable Message-ID.
 */

const smtp = smtpSink({ user: "latchkey", pass: "smtp-secret" });
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let deliver: typeof import("@/lib/notifications/deliver");
let preferences: typeof import("@/lib/notifications/preferences");
let eve: Principal, lead: Principal, lead2: Principal, quiet: Principal, gone: Principal, admin: Principal;

beforeAll(async () => {
  const port = await smtp.start();
  fx = await engineFixture({
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"),
    LATCHKEY_SMTP_URL: `smtp://latchkey:smtp-secret@127.0.0.1:${port}`,
    LATCHKEY_SMTP_FROM: "Latchkey <latchkey@example.com>",
  });
  engine = await import("@/lib/approvals/engine");
  deliver = await import("@/lib/notifications/deliver");
  preferences = await import("@/lib/notifications/preferences");
  eve = await fx.user("eve@example.com", ["engineering"]);
  lead = await fx.user("lead@example.com", ["engineering-leads"]);
  lead2 = await fx.user("lead2@example.com", ["engineering-leads"]);
  quiet = await fx.user("quiet@example.com", ["engineering-leads"]);
  gone = await fx.user("gone@example.com", ["engineering-leads"]);
  admin = await fx.user("admin@example.com", ["platform-admins"]);
  await fx.db.user.update({ where: { id: gone.id }, data: { active: false } });
  await preferences.setEmailNotifications(quiet, false);
}, 60_000);

afterAll(async () => {
  await fx?.close();
  await smtp.stop();
});

beforeEach(() => {
  smtp.received.length = 0;
});

const ask = (justification: string) =>
  engine.createRequest(eve, "temporary-access", { targetId: "no-ticket", role: "read", durationMinutes: 45, justification });

async function flush() {
  return deliver.flushNotifications();
}

describe("e-mail to the people concerned", () => {
  it("tells the eligible approvers of the current stage, in text and HTML with the link, and nobody else", async () => {
    const request = await ask("Debugging <script>alert(1)</script> & the sandbox");
    expect(await flush()).toMatchObject({ delivered: 2, failed: 0 });
    expect(smtp.received.map((m) => m.envelopeTo[0]).sort()).toEqual(["lead2@example.com", "lead@example.com"]);
    const mail = smtp.to("lead@example.com")[0]!;
    expect(mail.from?.value).toEqual([{ name: "Latchkey", address: "latchkey@example.com" }]);
    expect(mail.subject).toBe("[Latchkey] Approval needed: Temporary access on sandbox for eve@example.com");
    const link = `http://localhost:3999/requests/${request.id}`;
    expect(mail.text).toContain("Requested by: eve@example.com");
    expect(mail.text).toContain("What: Temporary access on sandbox (staging), role read");
    expect(mail.text).toContain("How long: 45m");
    expect(mail.text).toContain("Why: Debugging <script>alert(1)</script> & the sandbox");
    expect(mail.text).toContain("Stage: Team lead: approvers from engineering-leads");
    expect(mail.text).toContain(`Approve or reject it: ${link}`);
    // What the requester typed is text in the HTML, never markup.
    expect(mail.html).toContain("Debugging &#60;script&#62;alert(1)&#60;/script&#62; &#38; the sandbox");
    expect(mail.html).not.toContain("<script>");
    expect(mail.html).toContain(`<a href="${link}">Approve or reject it</a>`);
    const deliveries = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id, channel: "@email" } });
    expect(deliveries.map((d) => d.status)).toEqual(["delivered", "delivered"]);
    expect(smtp.received.map((m) => m.messageId).sort()).toEqual(deliveries.map((d) => `<${d.id}@latchkey>`).sort());
  });

  it("tells the next stage's approvers when a stage passes, then the requester who approved", async () => {
    const request = await ask("Two-stage check for the sandbox");
    await flush();
    smtp.received.length = 0;
    await engine.decide(lead, { requestId: request.id, decision: "approve", comment: "fine by me" });
    await flush();
    expect(smtp.received.map((m) => m.envelopeTo[0])).toEqual(["admin@example.com"]);
    expect(smtp.received[0]!.text).toContain("Stage: Platform: approvers from platform-admins");
    smtp.received.length = 0;
    await engine.decide(admin, { requestId: request.id, decision: "approve", comment: "go ahead" });
    await flush();
    expect(smtp.received.map((m) => m.envelopeTo[0])).toEqual(["eve@example.com"]);
    const mail = smtp.received[0]!;
    expect(mail.subject).toBe("[Latchkey] Approved: your request for Temporary access on sandbox");
    expect(mail.text).toContain("Approved by: admin@example.com");
    expect(mail.text).toContain("Comment: go ahead");
    expect(mail.text).toMatch(/Expires: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(mail.text).toContain(`See the request: http://localhost:3999/requests/${request.id}`);

    smtp.received.length = 0;
    expect(await engine.notifyExpiring(request.id)).toBe(true);
    await flush();
    expect(smtp.to("eve@example.com").map((m) => m.subject)).toEqual(["[Latchkey] Expires soon: your access to Temporary access on sandbox"]);
    smtp.received.length = 0;
    expect(await engine.expireGrant(request.id, new Date(Date.now() + 3 * 3600_000))).toBe("expired");
    await flush();
    expect(smtp.to("eve@example.com").map((m) => m.subject)).toEqual(["[Latchkey] Expired: your access to Temporary access on sandbox"]);
  });

  it("tells the requester of a rejection, with the approver's reason", async () => {
    const request = await ask("Something the lead will turn down");
    await flush();
    smtp.received.length = 0;
    await engine.decide(lead2, { requestId: request.id, decision: "reject", comment: "use staging instead" });
    await flush();
    expect(smtp.received.map((m) => [m.envelopeTo[0], m.subject])).toEqual([
      ["eve@example.com", "[Latchkey] Rejected: your request for Temporary access on sandbox"],
    ]);
    expect(smtp.received[0]!.text).toContain("Rejected by: lead2@example.com");
    expect(smtp.received[0]!.text).toContain("Comment: use staging instead");
  });
});

describe("break-glass", () => {
  it("tells the approvers of every stage, who review it", async () => {
    const sam = await fx.user("sam@example.com", ["sre"]);
    const request = await engine.breakGlass(
      sam,
      "temporary-access",
      { targetId: "no-ticket", role: "read", durationMinutes: 15, justification: "Outage: payments down" },
      "Payments are down for everyone",
    );
    await flush();
    expect(
      smtp.received
        .filter((m) => m.subject?.includes(request.id) || m.text?.includes(request.id))
        .map((m) => m.envelopeTo[0])
        .sort(),
    ).toEqual(["admin@example.com", "lead2@example.com", "lead@example.com"]);
    expect(smtp.to("lead@example.com")[0]!.subject).toBe("[Latchkey] Break-glass: sam@example.com opened Temporary access on sandbox; it needs a review");
    expect(smtp.to("lead@example.com")[0]!.text).toContain("Stage: Team lead: approvers from engineering-leads, platform-admins");
    expect(smtp.to("sam@example.com")).toEqual([]);
  });
});

describe("opting out", () => {
  it("a person who turned e-mail off gets none, and the change is audited; turning it on again restores it", async () => {
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "notifications.email_off", actorId: quiet.id } });
    expect(event.actorEmail).toBe("quiet@example.com");
    await ask("Checking the opt-out");
    await flush();
    expect(smtp.to("quiet@example.com")).toEqual([]);
    expect(smtp.to("lead@example.com")).toHaveLength(1);

    expect(await preferences.setEmailNotifications(quiet, true)).toEqual({ email: true });
    smtp.received.length = 0;
    await ask("Checking the opt-in");
    await flush();
    expect(smtp.to("quiet@example.com")).toHaveLength(1);
    await preferences.setEmailNotifications(quiet, false);
    expect(await fx.db.user.findUniqueOrThrow({ where: { id: quiet.id } })).toMatchObject({ emailNotifications: false });
  });
});

describe("delivery", () => {
  it("retries a temporary SMTP failure through the outbox, with the same Message-ID, and records the error meanwhile", async () => {
    smtp.failNext(1);
    const request = await ask("Retry test for e-mail");
    const first = await flush();
    expect(first.delivered).toBe(1);
    const waiting = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, channel: "@email", status: "pending" } });
    expect(waiting.attempts).toBe(1);
    expect(waiting.lastError).toMatch(/451/);
    expect(waiting.nextAttemptAt.getTime()).toBeGreaterThan(Date.now());
    // Its backoff is over.
    await fx.db.notificationDelivery.update({ where: { id: waiting.id }, data: { nextAttemptAt: new Date(Date.now() - 1000) } });
    expect(await flush()).toMatchObject({ delivered: 1 });
    const sent = await fx.db.notificationDelivery.findUniqueOrThrow({ where: { id: waiting.id } });
    expect(sent).toMatchObject({ status: "delivered", attempts: 2, lastError: null });
    const payload = sent.payload as { to: string };
    expect(smtp.to(payload.to).at(-1)!.messageId).toBe(`<${waiting.id}@latchkey>`);
    expect(smtp.to(payload.to).at(-1)!.headers.get("x-latchkey-delivery")).toBe(waiting.id);
  });

  it("sends nothing when the SMTP server refuses Latchkey's credentials, and keeps the password out of the error", async () => {
    const url = process.env.LATCHKEY_SMTP_URL!;
    const wrong = url.replace("smtp-secret", "wrong-password");
    const env = await import("@/lib/env");
    // env() is read once; the transport follows its value, so the test swaps the cached configuration's URL.
    const current = env.env();
    const original = current.LATCHKEY_SMTP_URL;
    Object.assign(current, { LATCHKEY_SMTP_URL: wrong });
    try {
      const request = await ask("Credentials test for e-mail");
      await flush();
      const rows = await fx.db.notificationDelivery.findMany({ where: { requestId: request.id, channel: "@email" } });
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        expect(row.status).toBe("pending");
        expect(row.lastError).toMatch(/535|auth/i);
        expect(row.lastError).not.toContain("wrong-password");
      }
      expect(smtp.received).toEqual([]);
    } finally {
      Object.assign(current, { LATCHKEY_SMTP_URL: original });
    }
  });
});
