/**
 * Audit events recorded inside a transaction wait here and join the chain together just
 * before it commits (lib/db.ts flushes them), so the chain's lock is held for a few
 * milliseconds at the end of the transaction rather than for all of it. If the flush
 * fails, the transaction fails: an event still cannot be lost without its change.
 */

/** What a transaction's events say this process's caches must forget once it commits: a grant that ended (active → any other state), an API token revoked. */
export interface Committed {
  kind: "request" | "token" | "user";
  id: string;
}

/** Appends the events; returns what they say caches must forget. */
type Flush = (tx: unknown, events: unknown[]) => Promise<Committed[]>;

const buffers = new WeakMap<object, unknown[]>();
let flusher: Flush | undefined;

export function openAuditBuffer(tx: object): void {
  buffers.set(tx, []);
}

export function auditBuffer(tx: object): unknown[] | undefined {
  return buffers.get(tx);
}

/** Appends what the transaction recorded; returns what caches must forget once it commits. */
export async function flushAuditBuffer(tx: object): Promise<Committed[]> {
  const events = buffers.get(tx);
  buffers.delete(tx);
  if (!events?.length) return [];
  if (!flusher) throw new Error("audit events were recorded but no writer is registered");
  return flusher(tx, events);
}

export function registerAuditFlusher(flush: Flush): void {
  flusher = flush;
}
