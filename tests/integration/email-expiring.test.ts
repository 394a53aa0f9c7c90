import path from "node:path";
import PgBoss from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../helpers/database";
import { engineFixture } from "../helpers/engine-fixture";
import { smtpSink } from "../helpers/smtp-sink";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * README "E-mail": "approved, rejected, expiring soon and expired: the requester". The
 * "expires soon" mail is sent by the worker's notify-expiring job, due the policy's
 * expiringNotice before the grant ends; here the real worker runs it (made due now) and the
 * mail arrives at a real SMTP server. The job running a second time sends no second mail.
 */
const smtp = smtpSink({ user: "latchkey", pass: "smtp-secret" });
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let worker: PgBoss | undefined;
let eve: Principal, lead: Principal, admin: Principal;

beforeAll(async () => {
  const port = await smtp.start();
  fx = await engineFixture({
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"),
    LATCHKEY_SMTP_URL: `smtp://latchkey:smtp-secret@127.0.0.1:${port}`,
    LATCHKEY_SMTP_FROM: "Latchkey <latchkey@example.com>",
  });
  engine = await import("@/lib/approvals/engine");
  eve = await fx.user("eve@example.com", ["engineering"]);
  lead = await fx.user("lead@example.com", ["engineering-leads"]);
  admin = await fx.user("admin@example.com", ["platform-admins"]);
  const { startWorker } = await import("@/lib/jobs/worker");
  worker = await startWorker(fx.url, { pollingIntervalSeconds: 0.5 });
}, 120_000);
afterAll(async () => {
  await worker?.stop({ graceful: false, wait: true });
  await fx?.close();
  await smtp.stop();
});

const subjects = () => smtp.to("eve@example.com").map((m) => m.subject ?? "");
const expiringJobs = async (requestId: string) =>
  (
    await sql(fx.url, `SELECT id, state, start_after FROM pgboss.job WHERE name = 'notify-expiring' AND data->>'requestId' = $1 ORDER BY created_on`, [
      requestId,
    ])
  ).rows as {
    id: string;
    state: string;
    start_after: Date;
  }[];

describe("the requester's e-mail before a grant ends", () => {
  it("arrives when the notice is due, saying when the access expires; a second run of the job sends no second mail", { timeout: 120_000 }, async () => {
    const request = await engine.createRequest(eve, "temporary-access", {
      targetId: "no-ticket",
      role: "read",
      durationMinutes: 45,
      justification: "Expiry notice drill",
    });
    await engine.decide(lead, { requestId: request.id, decision: "approve", comment: "" });
    const active = await engine.decide(admin, { requestId: request.id, decision: "approve", comment: "" });
    expect(active.status).toBe("active");
    await expect.poll(subjects, { timeout: 30_000 }).toContain("[Latchkey] Approved: your request for Temporary access on sandbox");
    expect(subjects().filter((s) => s.startsWith("[Latchkey] Expires soon"))).toEqual([]);

    // Queued for ten minutes (the default notice) before the end; made due now, the worker runs it.
    const [job] = await expiringJobs(request.id);
    expect(job).toMatchObject({ state: "created" });
    expect(job!.start_after.getTime()).toBe(active.expiresAt!.getTime() - 10 * 60_000);
    await sql(fx.url, `UPDATE pgboss.job SET start_after = now() WHERE id = $1`, [job!.id]);
    await expect.poll(subjects, { timeout: 30_000 }).toContain("[Latchkey] Expires soon: your access to Temporary access on sandbox");
    const mail = smtp.to("eve@example.com").find((m) => m.subject?.startsWith("[Latchkey] Expires soon"))!;
    expect(mail.text).toContain("Expires");
    expect(mail.text).toContain(`/requests/${request.id}`);
    const delivery = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, event: "expiring", channel: "@email" } });
    expect(mail.messageId).toBe(`<${delivery.id}@latchkey>`);

    // The job again (a retry, a second worker): still one mail.
    const boss = new PgBoss({ connectionString: fx.url, schema: "pgboss", supervise: false, schedule: false, migrate: false, max: 1 });
    await boss.start();
    try {
      const again = (await boss.send("notify-expiring", { requestId: request.id }))!;
      await expect.poll(async () => (await boss.getJobById("notify-expiring", again, { includeArchive: true }))?.state, { timeout: 30_000 }).toBe("completed");
    } finally {
      await boss.stop({ graceful: false, wait: true });
    }
    expect(subjects().filter((s) => s.startsWith("[Latchkey] Expires soon"))).toHaveLength(1);
    expect(await fx.db.notificationDelivery.count({ where: { requestId: request.id, event: "expiring" } })).toBe(1);
  });
});
