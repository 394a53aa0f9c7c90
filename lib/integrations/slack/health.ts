import "server-only";
import { db } from "../../db";
import { env } from "../../env";
import { policy } from "../../policy/current";
import { probe, type IntegrationHealth, type IntegrationStatus } from "../adapter";
import { configuredSlackApp } from "./client";

/**
 * The Slack app's row on Admin → Integrations: whether its token works now (auth.test),
 * what is missing, and the last errors of its deliveries. No row when neither the
 * environment nor the policy mentions the Slack app.
 */
async function slackAppStatus(): Promise<IntegrationStatus[]> {
  const targets = Object.values(policy().targets).filter((t) => t.slack);
  const slack = configuredSlackApp();
  if (!slack && targets.length === 0) return [];
  const failures = await db.notificationDelivery.findMany({
    where: { channel: { startsWith: "slack:" }, lastError: { not: null } },
    orderBy: { createdAt: "desc" },
    take: 3,
    select: { createdAt: true, lastError: true, channel: true },
  });
  const lastErrors = failures.map((f) => ({ at: f.createdAt, message: `${f.channel}: ${f.lastError}` }));
  const base = {
    targetId: "slack-app",
    title: `Slack app (${targets.length} target${targets.length === 1 ? "" : "s"} post to Slack)`,
    kind: "slack",
    lastErrors,
  };
  if (!slack) return [{ ...base, reachable: false, detail: "LATCHKEY_SLACK_BOT_TOKEN is not set" }];
  let who: { team: string; user: string } | undefined;
  const result = await probe(async () => (who = await slack.whoAmI()));
  if (!result.reachable) return [{ ...base, ...result }];
  const buttons = targets.some((t) => t.slack!.buttons);
  const note = buttons && !env().LATCHKEY_SLACK_SIGNING_SECRET ? "; buttons are hidden until LATCHKEY_SLACK_SIGNING_SECRET is set" : "";
  return [{ ...base, reachable: true, detail: `answered as ${who!.user} in ${who!.team}${note}` }];
}

export const health: IntegrationHealth = { rows: slackAppStatus };
