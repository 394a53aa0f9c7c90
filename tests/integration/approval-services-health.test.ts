import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { smtpSink } from "../helpers/smtp-sink";
import { jiraFake } from "../fakes/jira";
import { opsgenieFake, pagerDutyFake } from "../fakes/on-call";

/**
 * Admin → Integrations lists the SMTP server, each ticket check and each on-call schedule
 * of the policy with its health, asked now against the real protocol (fakes for the hosted
 * services, a real SMTP server), and the last errors seen on each.
 */

const smtp = smtpSink({ user: "latchkey", pass: "smtp-secret" });
const jira = jiraFake({ email: "latchkey@example.com", token: "jira-api-token" });
const pd = pagerDutyFake("pd-token");
const og = opsgenieFake("og-key");
let fx: Awaited<ReturnType<typeof engineFixture>>;
let statuses: typeof import("@/lib/integrations/status").approvalServiceStatuses;

beforeAll(async () => {
  const port = await smtp.start();
  fx = await engineFixture({
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"),
    LATCHKEY_SMTP_URL: `smtp://latchkey:smtp-secret@127.0.0.1:${port}`,
    TEST_JIRA_URL: await jira.start(),
    TEST_JIRA_USER: "latchkey@example.com",
    TEST_JIRA_TOKEN: "jira-api-token",
    LATCHKEY_PAGERDUTY_TOKEN: "pd-token",
    LATCHKEY_PAGERDUTY_URL: await pd.start(),
    LATCHKEY_OPSGENIE_TOKEN: "og-key",
    LATCHKEY_OPSGENIE_URL: await og.start(),
  });
  // TEST_TICKET_CHECK_URL stays unset: that check is shown as not configured.
  delete process.env.TEST_TICKET_CHECK_URL;
  statuses = (await import("@/lib/integrations/status")).approvalServiceStatuses;
  pd.roster("PSCHED1", [{ email: "sam@example.com", start: "2026-11-29T08:00:00Z", end: "2026-11-29T20:00:00Z" }]);
}, 60_000);

afterAll(async () => {
  await fx?.close();
  await Promise.all([smtp.stop(), jira.stop(), pd.stop(), og.stop()]);
});

const row = (all: Awaited<ReturnType<typeof statuses>>, system: string, subject?: string) =>
  all.find((s) => s.system === system && (!subject || s.subject === subject));

describe("approval services on Admin → Integrations", () => {
  it("shows each configured service's health now, and what is missing", async () => {
    const all = await statuses();
    expect(row(all, "smtp")).toMatchObject({ reachable: true, subject: "e-mail from Latchkey <latchkey@localhost>" });
    expect(row(all, "jira", "payments database (production)")).toMatchObject({ reachable: true, detail: "answered" });
    expect(jira.requests.at(-1)!.path).toBe("/rest/api/3/issue/LATCHKEYHEALTH-0?fields=status,summary");
    expect(row(all, "ticket-http", "ledger (production)")).toMatchObject({ reachable: false, detail: "TEST_TICKET_CHECK_URL is not set" });
    expect(row(all, "pagerduty", "schedule PSCHED1")).toMatchObject({ reachable: true, detail: "answered: 1 on call now" });
    // The Opsgenie schedule named in the policy does not exist there.
    expect(row(all, "opsgenie", "schedule search-primary")).toMatchObject({
      reachable: false,
      detail: "Opsgenie answered HTTP 404: Schedule with identifier [search-primary] doesn't exist",
    });
  });

  it("shows a refused credential as unreachable, with the service's words, and the last failed on-call lookups", async () => {
    og.roster("search-primary", []);
    const { env } = await import("@/lib/env");
    const config = env();
    const [smtpUrl, token] = [config.LATCHKEY_SMTP_URL, process.env.TEST_JIRA_TOKEN];
    Object.assign(config, { LATCHKEY_SMTP_URL: smtpUrl!.replace("smtp-secret", "wrong") });
    process.env.TEST_JIRA_TOKEN = "revoked";
    pd.setDown(true);
    try {
      const sre = await fx.user("sam@example.com", ["sre"]);
      const engine = await import("@/lib/approvals/engine");
      await engine.createRequest(sre, "temporary-access", { targetId: "pd-oncall", role: "read", durationMinutes: 30, justification: "health page check" });
      const all = await statuses();
      expect(row(all, "smtp")!.reachable).toBe(false);
      expect(row(all, "smtp")!.detail).toMatch(/535|auth/i);
      expect(row(all, "jira")).toMatchObject({
        reachable: false,
        detail: "Jira answered HTTP 401: You are not authenticated. Authentication required to perform this operation.",
      });
      const pagerduty = row(all, "pagerduty")!;
      expect(pagerduty).toMatchObject({ reachable: false, detail: "PagerDuty answered HTTP 503" });
      expect(pagerduty.lastErrors.map((e) => e.message)).toEqual(["PagerDuty answered HTTP 503"]);
      expect(row(all, "opsgenie")).toMatchObject({ reachable: true, detail: "answered: 0 on call now" });
    } finally {
      Object.assign(config, { LATCHKEY_SMTP_URL: smtpUrl });
      process.env.TEST_JIRA_TOKEN = token;
      pd.setDown(false);
    }
  });
});
