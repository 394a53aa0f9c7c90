import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Slack's request signing (api.slack.com/authentication/verifying-requests-from-slack):
 * `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">` keyed with the
 * app's signing secret, and `X-Slack-Request-Timestamp` in Unix seconds. Requests older (or
 * newer) than five minutes are refused, so a captured click cannot be replayed later.
 * Hand-written because it is ten lines and Slack's verifier ships only inside Bolt.
 */
export const SLACK_SIGNATURE_HEADER = "x-slack-signature";
export const SLACK_TIMESTAMP_HEADER = "x-slack-request-timestamp";
export const SLACK_MAX_AGE_SECONDS = 5 * 60;

export function signSlackRequest(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

/** Why a request does not come from Slack, or null when its signature and time check out. */
export function slackSignatureRefusal(
  secret: string,
  headers: { signature: string | null; timestamp: string | null },
  body: string,
  now = Date.now(),
): string | null {
  if (!headers.signature || !headers.timestamp) return "The request is not signed: X-Slack-Signature and X-Slack-Request-Timestamp are required.";
  const timestamp = Number(headers.timestamp);
  if (!/^\d{1,12}$/.test(headers.timestamp) || !Number.isSafeInteger(timestamp)) return "X-Slack-Request-Timestamp is not a Unix time in seconds.";
  if (Math.abs(now / 1000 - timestamp) > SLACK_MAX_AGE_SECONDS) return "The request is more than five minutes old (or ahead); replays are refused.";
  const expected = Buffer.from(signSlackRequest(secret, timestamp, body));
  const given = Buffer.from(headers.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "The Slack signature does not match this request.";
  return null;
}
