import { db } from "../db";
import { env } from "../env";
import { logger } from "../log";
import { announceKeyChange } from "./key-announce";
import { writeKeyDirectory } from "./key-files";
import { publishedKeyPems, rotateSigningKeyIfDue, type ScheduledRotation } from "./keys";

/**
 * The worker's signing-key step (every sweep): rotate on schedule, keep the key directory
 * in step with what JWKS publishes, and announce each change (hook, webhook) so a
 * file-based verifier reloads while the next key is still only published. An announcement
 * that fails is tried again at the next step until it succeeds.
 */
const log = logger("signing-keys");

let lastKids: string | null = null;
let announcementOwed = false;

export interface KeyMaintenance {
  rotation: ScheduledRotation | null;
  kids: string[];
  /** Whether the hook and webhook ran in this step (and succeeded). */
  announced: boolean;
}

export async function maintainSigningKeys(now = new Date()): Promise<KeyMaintenance> {
  const { LATCHKEY_KEY_DIR: dir, LATCHKEY_KEY_HOOK: hook, LATCHKEY_KEY_WEBHOOK_URL: url } = env();
  const rotation = await rotateSigningKeyIfDue(now);
  if (rotation) log.info(`signing key ${rotation.step} on schedule`, { kid: rotation.kid });
  if (!dir && !hook && !url) return { rotation, kids: [], announced: false };

  const keys = await publishedKeyPems(now);
  const kids = keys.map((k) => k.kid);
  let changed = lastKids !== null && lastKids !== kids.join(",");
  if (dir) {
    const written = await writeKeyDirectory(dir, keys);
    changed ||= written.changed;
    if (written.left.length > 0) log.error("more signing keys are published than the key directory has files for", { left: written.left.join(",") });
  }
  lastKids = kids.join(",");
  if (!changed && !announcementOwed) return { rotation, kids, announced: false };
  if (!hook && !url) return { rotation, kids, announced: false };

  const next = await db.signingKey.findFirst({ where: { status: "next" }, orderBy: { createdAt: "asc" } });
  try {
    await announceKeyChange({
      kids,
      active: keys.find((k) => k.status === "active")?.kid ?? null,
      next: next ? { kid: next.kid, activatesAt: next.activatesAt!.toISOString() } : null,
      dir: dir ?? null,
    });
    announcementOwed = false;
    log.info("announced a change of the published signing keys", { kids: kids.join(",") });
    return { rotation, kids, announced: true };
  } catch (error) {
    announcementOwed = true;
    log.error("could not announce a change of the published signing keys; trying again at the next sweep", { error: (error as Error).message });
    return { rotation, kids, announced: false };
  }
}
