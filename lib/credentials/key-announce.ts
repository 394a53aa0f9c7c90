import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { env } from "../env";
import { signedHeaders } from "../notifications/signature";

/**
 * Tells the operator's automation that the published signing keys changed, so a verifier
 * that reads key files (HAProxy) reloads before the next key starts signing: an optional
 * command (LATCHKEY_KEY_HOOK, run with sh -c) and an optional JSON webhook
 * (LATCHKEY_KEY_WEBHOOK_URL), signed by the Standard Webhooks specification like the
 * notification webhooks: one signature per secret during a rotation, and a `webhook-id`
 * derived from the change itself, so the retries of one announcement (the next sweep tries
 * again after a failure) carry the same id and a receiver acts on each change once.
 */
export interface KeyChange {
  /** Published kids, oldest first. */
  kids: string[];
  active: string | null;
  next: { kid: string; activatesAt: string } | null;
  /** The key directory, when one is kept. */
  dir: string | null;
}

const run = promisify(execFile);

export async function announceKeyChange(change: KeyChange): Promise<void> {
  const { LATCHKEY_KEY_HOOK: hook, LATCHKEY_KEY_WEBHOOK_URL: url, LATCHKEY_KEY_WEBHOOK_SECRET: secret } = env();
  if (hook) {
    const vars = {
      LATCHKEY_KEY_KIDS: change.kids.join(","),
      LATCHKEY_KEY_ACTIVE: change.active ?? "",
      LATCHKEY_KEY_NEXT: change.next?.kid ?? "",
      LATCHKEY_KEY_NEXT_ACTIVATES_AT: change.next?.activatesAt ?? "",
      LATCHKEY_KEY_DIR: change.dir ?? "",
    };
    try {
      await run("sh", ["-c", hook], { env: { ...process.env, ...vars }, timeout: 60_000 });
    } catch (error) {
      const { code, stderr } = error as { code?: number | string; stderr?: string };
      throw new Error(
        `The key hook failed (exit ${code ?? "unknown"}): ${
          String(stderr ?? "")
            .trim()
            .slice(0, 500) || (error as Error).message
        }`,
      );
    }
  }
  if (url) {
    const body = JSON.stringify({ event: "signing-keys.changed", ...change });
    const id = keyChangeId(change);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      ...(secret ? signedHeaders(secret, id, timestamp, body) : { "webhook-id": id, "webhook-timestamp": String(timestamp) }),
    };
    const response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`The key webhook answered ${response.status}.`);
  }
}

/** The delivery id of one change: the same for every retry of it, another for any other change. */
export function keyChangeId(change: KeyChange): string {
  return `msg_keys_${createHash("sha256")
    .update(JSON.stringify([change.kids, change.active, change.next, change.dir]))
    .digest("hex")
    .slice(0, 32)}`;
}
