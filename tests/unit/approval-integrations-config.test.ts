import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseEnv } from "@/lib/env";
import { composeEmail } from "@/lib/notifications/email-message";
import { findTicketKey } from "@/lib/integrations/tickets/check";
import { parsePolicy } from "@/lib/policy/load";
import { matchingAutoApproval, stagesOf } from "@/lib/policy/evaluate";

/**
 * The configuration of ticket rules, on-call rules and e-mail: strict policy keys with
 * errors that name the place, environment variables checked at start, and the pure parts
 * (ticket matching, on-call conditions, the e-mail text).
 */

const fixture = readFileSync(path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"), "utf8");
const errorOf = (work: () => unknown) => {
  try {
    work();
  } catch (error) {
    return (error as Error).message;
  }
  return null;
};
const edited = (from: string, to: string) => {
  expect(fixture).toContain(from);
  return fixture.replace(from, to);
};

describe("policy keys", () => {
  it("accepts the test policy with its ticket and on-call rules", () => {
    const policy = parsePolicy(fixture, "p.yaml");
    expect(policy.targets["jira-checked"]!.ticket).toMatchObject({ pattern: "(INC|CHG)-[0-9]+", jira: { urlEnv: "TEST_JIRA_URL" } });
    expect(policy.workflows["temporary-access"]!.targets["pd-oncall"]!.autoApprove[0]!.onCall).toEqual({ provider: "pagerduty", schedule: "PSCHED1" });
  });

  it.each([
    ["a mistyped ticket key", edited("example: INC-123,", "exmple: INC-123,"), /`exmple` is not a key of a target's ticket rule; did you mean `example`\?/],
    [
      "a pattern that is no regular expression",
      edited('pattern: "OPS-[0-9]+"', 'pattern: "OPS-[0-9+"'),
      /targets\.http-checked\.ticket\.pattern: is not a regular expression/,
    ],
    [
      "a Jira URL in the policy instead of a variable name",
      edited("urlEnv: TEST_JIRA_URL", "urlEnv: https://jira.example.com"),
      /ticket\.jira\.urlEnv: must name an environment variable/,
    ],
    [
      "both a jira and an http check",
      edited(
        "      http: { urlEnv: TEST_TICKET_CHECK_URL, tokenEnv: TEST_TICKET_CHECK_TOKEN }",
        "      http: { urlEnv: TEST_TICKET_CHECK_URL }\n      jira: { urlEnv: A, userEnv: B, tokenEnv: C }",
      ),
      /give either a jira or an http check, not both/,
    ],
    [
      "a link without {key}",
      edited('link: "https://tickets.example.com/browse/{key}"', 'link: "https://tickets.example.com/browse/"'),
      /ticket\.link: must be an http\(s\) URL containing "\{key\}"/,
    ],
    [
      "an unknown on-call service",
      edited("onCall: { provider: opsgenie, schedule: search-primary }", "onCall: { provider: victorops, schedule: search-primary }"),
      /autoApprove\.0\.onCall\.provider/,
    ],
    [
      "a mistyped on-call key",
      edited("onCall: { provider: opsgenie, schedule: search-primary }", "onCall: { provider: opsgenie, schedul: search-primary }"),
      /`schedul` is not a key of an on-call schedule; did you mean `schedule`\?/,
    ],
  ])("refuses %s, naming the place", (_name, text, problem) => {
    expect(errorOf(() => parsePolicy(text, "p.yaml"))).toMatch(problem);
  });

  it("refuses an on-call stage that needs one approver from each group", () => {
    const text = edited(
      "groups: [engineering-leads], onCall: { provider: pagerduty, schedule: PSCHED1 } }",
      "groups: [engineering-leads], oneFromEachGroup: true, onCall: { provider: pagerduty, schedule: PSCHED1 } }",
    );
    expect(errorOf(() => parsePolicy(text, "p.yaml"))).toMatch(/stages\.0\.onCall: an on-call schedule cannot be combined with oneFromEachGroup/);
  });
});

describe("pure parts", () => {
  it("finds a ticket key only as a whole word", () => {
    expect(findTicketKey("(INC|CHG)-[0-9]+", "see INC-12, CHG-3")).toBe("INC-12");
    expect(findTicketKey("(INC|CHG)-[0-9]+", "(CHG-45)")).toBe("CHG-45");
    expect(findTicketKey("(INC|CHG)-[0-9]+", "XINC-12 INC-12a PRE-INC-1")).toBeNull();
  });

  it("an on-call rule matches only with the requester's on-call group, and an on-call stage lists its pseudo-group", () => {
    const policy = parsePolicy(fixture, "p.yaml");
    const rule = policy.workflows["temporary-access"]!.targets["pd-oncall"]!;
    const who = { id: "u1", email: "sam@example.com", groups: ["sre"], roles: ["requester" as const] };
    expect(matchingAutoApproval(rule, { who, durationSeconds: 1800, accessRole: "read" })).toBeUndefined();
    expect(matchingAutoApproval(rule, { who, durationSeconds: 1800, accessRole: "read", onCall: new Set(["on-call:pagerduty:OTHER"]) })).toBeUndefined();
    expect(matchingAutoApproval(rule, { who, durationSeconds: 1800, accessRole: "read", onCall: new Set(["on-call:pagerduty:PSCHED1"]) })?.name).toBe(
      "pagerduty-on-call-read",
    );
    expect(matchingAutoApproval(rule, { who, durationSeconds: 7200, accessRole: "read", onCall: new Set(["on-call:pagerduty:PSCHED1"]) })).toBeUndefined();
    expect(stagesOf(rule)[0]).toMatchObject({
      groups: ["engineering-leads", "on-call:pagerduty:PSCHED1"],
      onCall: { provider: "pagerduty", schedule: "PSCHED1" },
    });
  });

  it("keeps header injection out of the subject", () => {
    const mail = composeEmail({
      event: "pending",
      audience: "approver",
      requester: "eve@example.com",
      workflow: "Temporary access",
      target: "evil\r\nBcc: x@example.com",
      environment: "prod",
      role: null,
      duration: null,
      justification: "x",
      ticket: null,
      stage: null,
      decidedBy: null,
      comment: null,
      expiresAt: null,
      url: "http://l/requests/1",
    });
    expect(mail.subject).not.toMatch(/[\r\n]/);
  });
});

describe("environment", () => {
  const base = {
    DATABASE_URL: "postgresql://l/db",
    NEXTAUTH_SECRET: "x".repeat(32),
    LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32).toString("base64"),
    OIDC_ISSUER: "http://idp",
    OIDC_CLIENT_ID: "c",
    OIDC_CLIENT_SECRET: "s",
  };

  it("takes an SMTP URL and a From address, and defaults the on-call services' URLs", () => {
    const env = parseEnv({ ...base, LATCHKEY_SMTP_URL: "smtps://u:p@mail.example.com:465", LATCHKEY_SMTP_FROM: "Access <access@example.com>" });
    expect(env).toMatchObject({
      LATCHKEY_SMTP_URL: "smtps://u:p@mail.example.com:465",
      LATCHKEY_SMTP_FROM: "Access <access@example.com>",
      LATCHKEY_PAGERDUTY_URL: "https://api.pagerduty.com",
      LATCHKEY_OPSGENIE_URL: "https://api.opsgenie.com",
    });
  });

  it("refuses a bad SMTP URL or From address at start, naming the variable", () => {
    expect(errorOf(() => parseEnv({ ...base, LATCHKEY_SMTP_URL: "mail.example.com" }))).toContain("LATCHKEY_SMTP_URL: must be an smtp:// or smtps:// URL");
    expect(errorOf(() => parseEnv({ ...base, LATCHKEY_SMTP_FROM: "Latchkey" }))).toContain(
      'LATCHKEY_SMTP_FROM: must be an address, e.g. "Latchkey <latchkey@example.com>"',
    );
  });
});
