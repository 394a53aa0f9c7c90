import pg from "pg";
import { env } from "../env";
import { logger } from "../log";

/**
 * Changes that make what an instance keeps in memory stale (a credential revoked, a grant
 * ending, an API token revoked, a person's groups changed, a signing key changed, the
 * credential issuer changed), heard from PostgreSQL: triggers (or, for the issuer,
 * lib/credentials/issuer.ts) NOTIFY in the transaction that makes the change, so every
 * instance hears of it as it commits (migration change_notifications).
 *
 * A cache may answer from memory only while `changesLive()` is true, and may keep what it
 * read only if `changeGeneration()` did not move while it read: a change that commits in
 * between is never missed. When the listening connection drops, everything cached is
 * forgotten and caches read the database until it is back.
 *
 * A connection can also die silently (a network partition). So the feed sends itself a
 * heartbeat through the same channel every second, and counts as live only while it has
 * heard one sent in the last 2.5 seconds. PostgreSQL delivers notifications in commit
 * order, so hearing a heartbeat means every change committed before it was sent was heard.
 */
export type ChangeKind = "credential" | "request" | "token" | "user" | "key";
type Listener = (kind: ChangeKind | "*", id: string) => void;

const CHANNEL = "latchkey_changes";
const RECONNECT_MS = 1_000;
const HEARTBEAT_MS = 1_000;
const LIVE_MS = 2_500;
const me = `ping:${process.pid}-${Math.random().toString(36).slice(2)}`;
const log = logger("changes");
const listeners = new Set<Listener>();
let client: pg.Client | null = null;
let live = false;
let heardAt = 0;
let heartbeat: NodeJS.Timeout | undefined;
let failing = false;
let starting: Promise<void> | null = null;
let generation = 0;
let closed = false;

/** Calls `listener` for every change; "*" means forget everything (the feed was interrupted, or the issuer changed). */
export function onChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Whether changes are being heard right now (starts listening on first use). */
export function changesLive(): boolean {
  if (!live && !starting && !closed) starting = start().finally(() => (starting = null));
  return live && Date.now() - heardAt < LIVE_MS;
}

/** Moves on every change heard and on every interruption. */
export function changeGeneration(): number {
  return generation;
}

/**
 * Keeps `value` under `key` for `ms` if no change was heard since `generation` was read
 * (before the value was), the feed is live, and the map holds fewer than `limit` entries
 * (the oldest goes first). The caches of credentials and API tokens store through this.
 */
export function keepIfUnchanged<K, V>(map: Map<K, { value: V; until: number }>, key: K, value: V, generation: number, ms: number, limit = 10_000): void {
  map.delete(key);
  if (!changesLive() || generation !== changeGeneration()) return;
  if (map.size >= limit) map.delete(map.keys().next().value!);
  map.set(key, { value, until: Date.now() + ms });
}

/**
 * A change this process has just committed: its own caches forget what it touches at once,
 * without waiting for the notification to come back through PostgreSQL (a caller that
 * revokes a grant and then asks about its credential must be refused). Other processes
 * hear it from the feed.
 */
export function changedHere(kind: ChangeKind, id: string): void {
  emit(kind, id);
}

function emit(kind: ChangeKind | "*", id: string) {
  generation += 1;
  for (const listener of listeners) listener(kind, id);
}

async function start(): Promise<void> {
  const connection = new pg.Client({ connectionString: env().DATABASE_URL, application_name: "latchkey-changes" });
  const lost = (error?: Error) => {
    if (client !== connection) return;
    client = null;
    live = false;
    clearInterval(heartbeat);
    emit("*", "");
    if (error) log.warn("stopped hearing changes; caches read the database until it is back", { error: error.message });
    if (!closed) setTimeout(() => changesLive(), RECONNECT_MS).unref();
  };
  connection.on("error", lost);
  connection.on("end", () => lost());
  connection.on("notification", (message) => {
    if (message.channel !== CHANNEL || !message.payload) return;
    if (message.payload === me) {
      heardAt = Date.now();
      return;
    }
    if (message.payload.startsWith("ping:")) return;
    const at = message.payload.indexOf(":");
    emit(message.payload.slice(0, at) as ChangeKind, message.payload.slice(at + 1));
  });
  try {
    await connection.connect();
    await connection.query(`LISTEN ${CHANNEL}`);
  } catch (error) {
    connection.removeAllListeners("end");
    await connection.end().catch(() => undefined);
    if (!closed) setTimeout(() => changesLive(), RECONNECT_MS).unref();
    if (!failing) log.warn("cannot listen for changes yet; caches read the database", { error: (error as Error).message });
    failing = true;
    return;
  }
  if (closed) {
    await connection.end().catch(() => undefined);
    return;
  }
  // The feed never keeps a process alive by itself (scripts, tests). pg does not type the client's socket (connection.stream).
  (connection as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
  failing = false;
  client = connection;
  // Anything cached before this moment may have missed a change: start clean.
  emit("*", "");
  heardAt = Date.now();
  live = true;
  heartbeat = setInterval(() => {
    if (Date.now() - heardAt > 5 * LIVE_MS) {
      // Silent for too long: drop the connection and listen again on a new one.
      lost(new Error("no heartbeat heard"));
      // pg does not type the client's socket (connection.stream); destroying it ends the silent connection at once.
      (connection as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
      return;
    }
    connection.query("SELECT pg_notify($1, $2)", [CHANNEL, me]).catch((error: Error) => lost(error));
  }, HEARTBEAT_MS).unref();
}

/** Stops listening (at shutdown, and in tests). */
export async function closeChanges(): Promise<void> {
  closed = true;
  live = false;
  clearInterval(heartbeat);
  const connection = client;
  client = null;
  emit("*", "");
  await starting?.catch(() => undefined);
  await connection?.end().catch(() => undefined);
  closed = false;
}
