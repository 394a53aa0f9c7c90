import { z } from "zod";
import { parseDuration } from "./duration";

/**
 * Value schemas the policy's objects share, the integrations' target blocks included
 * (lib/integrations/<name>/adapter.ts), so a duration or an environment variable name is
 * checked, and refused, the same way wherever the policy gives one.
 */
export const policyId = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { message: "must be lower-case letters, digits and dashes" });

export const policyGroup = z.string().min(1);

/** "30m", "8h", "1d": parsed to seconds. */
export const policyDuration = z.string().transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === undefined) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a duration (use e.g. 30m, 8h, 1d)` });
    return z.NEVER;
  }
  return seconds;
});

/**
 * Latchkey's own secrets. A policy names variables whose values Latchkey sends to outside
 * systems (a webhook's URL, Airflow's password, a database's admin URL); naming one of these
 * would send Latchkey's own database, keys or tokens there, so the policy may not.
 */
export const OWN_SECRETS = new Set([
  "DATABASE_URL",
  "NEXTAUTH_SECRET",
  "OIDC_CLIENT_SECRET",
  "LATCHKEY_ENCRYPTION_KEY",
  "LATCHKEY_ENCRYPTION_KEY_PREVIOUS",
  "LATCHKEY_FORWARD_AUTH_PROXIES",
  "LATCHKEY_METRICS_TOKEN",
  "LATCHKEY_KEY_WEBHOOK_SECRET",
  "LATCHKEY_SLACK_BOT_TOKEN",
  "LATCHKEY_SLACK_SIGNING_SECRET",
  "LATCHKEY_SMTP_URL",
  "LATCHKEY_PAGERDUTY_TOKEN",
  "LATCHKEY_OPSGENIE_TOKEN",
]);

/** The name of an environment variable holding a URL or secret: secrets never live in the policy, and Latchkey's own are never sent on. */
export const envName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]*$/, { message: "must name an environment variable (secrets never live in the policy)" })
  .refine((name) => !OWN_SECRETS.has(name), { message: "names one of Latchkey's own secrets, which it never sends to another system" });
