import { chainEverythingCommitted } from "../audit/chainer";
import { readFile, writeFile, rename } from "node:fs/promises";
import { recordEvent, type Actor } from "../audit/record";
import { maintainSigningKeys } from "../credentials/key-maintenance";
import { rotateSigningKey } from "../credentials/keys";
import { db } from "../db";
import { env } from "../env";
import { readMapFile } from "../integrations/haproxy/map-file";
import { routeStore } from "../integrations/haproxy/route-store";
import { logger } from "../log";
import { revokeForDirectory } from "./engine";

/**
 * Fencing a restored database. A backup brings back every grant that was active when it was
 * taken, including those revoked since: their credentials would be accepted again. After a
 * restore (npm run restore:fence, or the worker when it sees the database went back in
 * time) every grant active in the restored data is revoked unless an admin re-confirms it,
 * the signing key is rotated, database sessions are ended, HAProxy's map file loses every
 * route the database does not hold an active grant for and the key files are rewritten.
 * Each step is audited; revocations go through the engine, so outside systems are undone
 * by each grant's own undo job.
 *
 * Detection: the worker keeps the audit chain's head (seq and hash) in a marker file outside
 * the database (LATCHKEY_RESTORE_MARKER). A head behind the marker, or an event at the
 * marker's seq with another hash, means the database went back in time.
 */
const log = logger("restore");

export interface FenceResult {
  revoked: string[];
  kept: string[];
  signingKey: string;
  sessionsEnded: number;
  routesClosed: string[];
}

/** `chainWaitMs`: how long the marker step waits for another chainer's pass (30 s). */
export async function fenceRestoredState(actor: Actor, reason: string, keep: string[] = [], { chainWaitMs = 30_000 } = {}): Promise<FenceResult> {
  const active = await db.accessRequest.findMany({ where: { status: "active" }, select: { id: true }, orderBy: { createdAt: "asc" } });
  const kept = active.filter((r) => keep.includes(r.id)).map((r) => r.id);
  const revoked: string[] = [];
  for (const { id } of active) {
    if (kept.includes(id)) continue;
    if (await revokeForDirectory(id, actor, `restore fence: ${reason}`)) revoked.push(id);
  }
  const { kid } = await rotateSigningKey(actor, `restore fence: ${reason}`);
  // Sessions end in the same transaction as the event that says so, before any outside call can fail.
  const sessionsEnded = await db.$transaction(async (tx) => {
    const { count } = await tx.session.deleteMany({});
    await recordEvent(tx, { actor, action: "auth.sessions_ended", data: { reason: `restore fence: ${reason}`, sessions: count } });
    return count;
  });
  const routesClosed = await closeRoutesWithoutGrant();
  await maintainSigningKeys().catch((error: Error) => log.error("could not rewrite the key files after the restore fence", { error: error.message }));
  await db.$transaction((tx) =>
    recordEvent(tx, {
      actor,
      action: "restore.fenced",
      data: { reason, revoked: revoked.length, reconfirmed: kept, signingKey: kid, sessionsEnded, routesClosed: routesClosed.length },
    }),
  );
  // The marker must leave the old history behind, or the next sweep would fence again what this fence kept (--keep) and what is granted since:
  // when the fence's own events cannot be linked first (the chainer's lock held too long), the head as it is matches the database as it now is.
  await writeRestoreMarker({ chainWaitMs }).catch(async (error: Error) => {
    log.error("could not link the fence's events before recording the chain head: recording the head as it is", { error: error.message });
    await writeRestoreMarker({ linkFirst: false });
  });
  return { revoked, kept, signingKey: kid, sessionsEnded, routesClosed };
}

/** Closes every route in HAProxy's map file whose credential is not of an active grant in the database. */
async function closeRoutesWithoutGrant(): Promise<string[]> {
  const { LATCHKEY_HAPROXY_MAP: mapFile, LATCHKEY_HAPROXY_SOCKET: socket } = env();
  if (!mapFile || !socket) return [];
  const inFile = [...(await readMapFile(mapFile)).keys()];
  const live = new Set(
    (await db.credential.findMany({ where: { id: { in: inFile }, revokedAt: null, request: { status: "active" } }, select: { id: true } })).map((c) => c.id),
  );
  const stale = inFile.filter((jti) => !live.has(jti));
  for (const jti of stale) await routeStore().close(jti);
  return stale;
}

interface Marker {
  seq: string;
  hash: string;
}

/**
 * The chain's head once every event committed so far is linked (the worker runs the chainer;
 * this is its step too), so the marker covers them: it waits out another chainer's pass rather
 * than read a head that pass is about to move.
 */
async function chainHead(linkFirst = true, chainWaitMs = 30_000): Promise<Marker | null> {
  if (linkFirst) await chainEverythingCommitted(chainWaitMs);
  const [head] = await db.$queryRaw<{ lastSeq: bigint; lastHash: string }[]>`SELECT "lastSeq", "lastHash" FROM "AuditChainHead" WHERE id = 1`;
  return head ? { seq: head.lastSeq.toString(), hash: head.lastHash } : null;
}

/** Records the chain head in the marker file (written whole, then renamed); `linkFirst: false` records the head as it is, unlinked events aside. */
export async function writeRestoreMarker({ linkFirst = true, chainWaitMs = 30_000 } = {}): Promise<void> {
  const file = env().LATCHKEY_RESTORE_MARKER;
  const head = file && (await chainHead(linkFirst, chainWaitMs));
  if (!file || !head) return;
  await writeFile(`${file}.tmp`, JSON.stringify(head));
  await rename(`${file}.tmp`, file);
}

/** Why the database looks restored from a backup (it went back in time against the marker), or null. */
export async function restoreDetected(): Promise<string | null> {
  const file = env().LATCHKEY_RESTORE_MARKER;
  if (!file) return null;
  let marker: Marker;
  try {
    marker = JSON.parse(await readFile(file, "utf8")) as Marker;
  } catch {
    return null;
  }
  const head = await chainHead();
  if (!head) return null;
  if (BigInt(head.seq) < BigInt(marker.seq)) return `the audit chain ends at #${head.seq}, but it had reached #${marker.seq}`;
  const [event] = await db.$queryRaw<{ hash: string | null }[]>`SELECT hash FROM "AuditEvent" WHERE seq = ${BigInt(marker.seq)}`;
  if (marker.seq !== "0" && event?.hash !== marker.hash) return `audit event #${marker.seq} is not the one recorded before: the database holds another history`;
  return null;
}

/** The worker's step: fence when the database went back in time, then move the marker to the head. */
export async function restoreFenceStep(actor: Actor): Promise<FenceResult | null> {
  const why = await restoreDetected();
  if (!why) {
    await writeRestoreMarker();
    return null;
  }
  log.error("the database went back in time (restored from a backup?): fencing the restored state", { why });
  return fenceRestoredState(actor, `detected by the worker: ${why}`);
}
