import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signature of a webhook body: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, sent
 * with the timestamp (Unix seconds) so receivers can refuse replays of old messages.
 */
export const SIGNATURE_HEADER = "x-latchkey-signature";
export const TIMESTAMP_HEADER = "x-latchkey-timestamp";

export function sign(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** For receivers (and tests): checks the signature and that the timestamp is recent. */
export function verify(secret: string, headers: { signature?: string; timestamp?: string }, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const timestamp = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(timestamp) || Math.abs(now / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, timestamp, body));
  const given = Buffer.from(headers.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
