import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures by the Standard Webhooks specification (standardwebhooks.com), so
 * receivers can verify them with any of its libraries: `webhook-id` (the same on every
 * retry of one delivery, for de-duplication), `webhook-timestamp` (Unix seconds, to refuse
 * replays) and `webhook-signature`, space-separated `v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">`, one per secret while a secret is being rotated.
 */
export const WEBHOOK_ID_HEADER = "webhook-id";
export const WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp";
export const WEBHOOK_SIGNATURE_HEADER = "webhook-signature";

const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
/** The specification recommends keys of 24 to 64 bytes. */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** Why one `whsec_` secret is unusable, or null when it is fine. */
export function secretProblem(secret: string): string | null {
  const match = SECRET.exec(secret.trim());
  if (!match) return 'must be "whsec_" followed by base64 (openssl rand -base64 32)';
  const bytes = Buffer.from(match[1]!, "base64").length;
  if (bytes < MIN_KEY_BYTES || bytes > MAX_KEY_BYTES) return `must decode to ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes, not ${bytes}`;
  return null;
}

/**
 * The keys of a comma-separated list of secrets, current first: during a rotation both the
 * new and the previous secret sign, so receivers holding either keep verifying.
 */
export function parseSecrets(list: string): Buffer[] {
  const secrets = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (secrets.length === 0) throw new Error("no webhook secret given");
  return secrets.map((secret, i) => {
    const problem = secretProblem(secret);
    if (problem) throw new Error(`webhook secret ${i + 1} ${problem}`);
    return Buffer.from(SECRET.exec(secret)![1]!, "base64");
  });
}

function signOne(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The three headers of one delivery attempt, signed with every key. */
export function signedHeaders(secrets: string, id: string, timestamp: number, body: string): Record<string, string> {
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: parseSecrets(secrets)
      .map((key) => signOne(key, id, timestamp, body))
      .join(" "),
  };
}

/**
 * For receivers (and tests): true when one of the signatures matches the secret and the
 * timestamp is within the tolerance.
 */
export function verifyWebhook(secret: string, headers: Record<string, string | undefined>, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const id = headers[WEBHOOK_ID_HEADER];
  const timestamp = Number(headers[WEBHOOK_TIMESTAMP_HEADER]);
  const signatures = headers[WEBHOOK_SIGNATURE_HEADER];
  if (!id || !signatures || !Number.isInteger(timestamp) || Math.abs(now / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signOne(parseSecrets(secret)[0]!, id, timestamp, body));
  return signatures.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
