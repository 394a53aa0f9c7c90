import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseEnv } from "@/lib/env";
import { signSlackRequest, slackSignatureRefusal } from "@/lib/integrations/slack/signature";
import { escapeMrkdwn } from "@/lib/integrations/slack/messages";
import { availabilityWarnings } from "@/lib/policy/report";
import { policySchema } from "@/lib/policy/schema";

const base = {
  DATABASE_URL: "postgresql://localhost/latchkey",
  NEXTAUTH_SECRET: randomBytes(32).toString("base64"),
  LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
  OIDC_ISSUER: "http://localhost:3998",
  OIDC_CLIENT_ID: "latchkey",
  OIDC_CLIENT_SECRET: "secret",
};

describe("Slack app settings", () => {
  it("refuse a token that is not a bot token and a short signing secret, naming the variable", () => {
    expect(() => parseEnv({ ...base, LATCHKEY_SLACK_BOT_TOKEN: "xoxp-user-token" })).toThrow(/LATCHKEY_SLACK_BOT_TOKEN: must be a bot token, "xoxb-\.\.\."/);
    expect(() => parseEnv({ ...base, LATCHKEY_SLACK_SIGNING_SECRET: "short" })).toThrow(/LATCHKEY_SLACK_SIGNING_SECRET: must be the app's signing secret/);
    expect(parseEnv({ ...base, LATCHKEY_SLACK_BOT_TOKEN: "xoxb-1-2-abc" })).toMatchObject({
      LATCHKEY_SLACK_BOT_TOKEN: "xoxb-1-2-abc",
      LATCHKEY_SLACK_API_URL: "https://slack.com/api/",
    });
  });

  it("the policy takes channel ids, not names, and buttons are off unless a target opts in", () => {
    const policy = (slack: unknown) => ({ version: 1, roles: {}, workflows: {}, targets: { t: { title: "T", service: "s", environment: "e", slack } } });
    const named = policySchema.safeParse(policy({ channels: ["#approvals"] }));
    expect(named.success).toBe(false);
    expect(named.error!.issues[0]).toMatchObject({
      path: ["targets", "t", "slack", "channels", 0],
      message: "must be a Slack channel id (e.g. C0123ABCD), not a name",
    });
    expect(policySchema.parse(policy({ channels: ["C0123ABCD"] })).targets.t!.slack).toEqual({ channels: ["C0123ABCD"], buttons: false });
    expect(policySchema.safeParse(policy({ channels: ["C0123ABCD"], button: true })).success).toBe(false);
  });

  it("policy:check warns when a target names Slack channels the environment leaves off", () => {
    const parsed = policySchema.parse({
      version: 1,
      roles: {},
      workflows: {},
      targets: { t: { title: "T", service: "s", environment: "e", slack: { channels: ["C0123ABCD"], buttons: true } } },
    });
    expect(availabilityWarnings(parsed, {})).toEqual(["warning: t names Slack channels, but the Slack app is off. Set LATCHKEY_SLACK_BOT_TOKEN."]);
    expect(availabilityWarnings(parsed, { LATCHKEY_SLACK_BOT_TOKEN: "xoxb-1" })).toEqual([
      "warning: t asks for Slack buttons, but they stay hidden until clicks can be verified. Set LATCHKEY_SLACK_SIGNING_SECRET.",
    ]);
    expect(availabilityWarnings(parsed, { LATCHKEY_SLACK_BOT_TOKEN: "xoxb-1", LATCHKEY_SLACK_SIGNING_SECRET: "0123456789abcdef0123" })).toEqual([]);
  });
});

describe("Slack request signatures", () => {
  // The worked example from Slack's "Verifying requests from Slack" page.
  const secret = "8f742231b10e8888abcd99yyyzzz85a5";
  const timestamp = 1531420618;
  const body =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
  const signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

  it("match Slack's published example", () => {
    expect(signSlackRequest(secret, timestamp, body)).toBe(signature);
    expect(slackSignatureRefusal(secret, { signature, timestamp: String(timestamp) }, body, timestamp * 1000 + 60_000)).toBeNull();
  });

  it("refuse a request more than five minutes off either way, or altered", () => {
    const at = (seconds: number) => (timestamp + seconds) * 1000;
    expect(slackSignatureRefusal(secret, { signature, timestamp: String(timestamp) }, body, at(301))).toMatch(/more than five minutes old/);
    expect(slackSignatureRefusal(secret, { signature, timestamp: String(timestamp) }, body, at(-301))).toMatch(/more than five minutes old/);
    expect(slackSignatureRefusal(secret, { signature, timestamp: String(timestamp) }, `${body}&x=1`, at(0))).toMatch(/does not match/);
    expect(slackSignatureRefusal(secret, { signature: signature.replace("v0=", "v1="), timestamp: String(timestamp) }, body, at(0))).toMatch(/does not match/);
    expect(slackSignatureRefusal(secret, { signature: null, timestamp: String(timestamp) }, body, at(0))).toMatch(/not signed/);
  });

  it("people's text cannot ping a channel or forge a link in mrkdwn", () => {
    expect(escapeMrkdwn("<!channel> see <https://evil.example|the docs> & more")).toBe("&lt;!channel&gt; see &lt;https://evil.example|the docs&gt; &amp; more");
  });
});
