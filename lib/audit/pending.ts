/**
 * Audit events recorded inside a transaction wait here and join the chain together just
 * before it commits (lib/db.ts flushes them), so the chain's lock is held for a few
 * milliseconds at the end of the transaction rather than for all of it. If the flush
 * fails, the transaction fails: an event still cannot be lost without its change.
 */

/** Appends the events; returns the ids of the requests whose grant they end (active → any other state). */
type Flush = (tx: unknown, events: unknown[]) => Promise<string[]>;

const buffers = new WeakMap<object, unknown[]>();
let flusher: Flush | undefined;

export function openAuditBuffer(tx: object): void {
  buffers.set(tx, []);
}

export function auditBuffer(tx: object): unknown[] | undefined {
  return buffers.get(tx);
}

/** Appends what the transaction recorded; returns the ids of the requests whose grant it ends. */
export async function flushAuditBuffer(tx: object): Promise<string[]> {
  const events = buffers.get(tx);
  buffers.delete(tx);
  if (!events?.length) return [];
  if (!flusher) throw new Error("audit events were recorded but no writer is registered");
  return flusher(tx, events);
}

export function registerAuditFlusher(flush: Flush): void {
  flusher = flush;
}
