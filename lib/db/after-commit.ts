/**
 * A transaction as a unit of work: what its code asks to run just before it commits (still
 * inside it: writing the audit events it buffered, lib/audit/record.ts) and once it has
 * committed, never if it rolls back (forgetting what its changes made stale in this process's
 * caches, waking the audit chainer). db.$transaction (lib/db.ts) opens the unit, runs the
 * steps before its commit in order, and the rest after. Nothing is registered at import, so a
 * transaction works the same in a process that never loaded the code that adds to it.
 */
interface Unit {
  beforeCommit: Array<() => Promise<void>>;
  afterCommit: Array<() => void>;
}

const units = new WeakMap<object, Unit>();

export function openUnit(tx: object): void {
  units.set(tx, { beforeCommit: [], afterCommit: [] });
}

/** Runs `run` inside `tx` once its code has finished, before the commit; false when `tx` is not a transaction opened by db.$transaction (nothing is queued). */
export function beforeCommit(tx: object, run: () => Promise<void>): boolean {
  const unit = units.get(tx);
  if (!unit) return false;
  unit.beforeCommit.push(run);
  return true;
}

/** Runs `run` once `tx` commits; false when `tx` is not a transaction opened by db.$transaction (nothing is queued). */
export function afterCommit(tx: object, run: () => void): boolean {
  const unit = units.get(tx);
  if (!unit) return false;
  unit.afterCommit.push(run);
  return true;
}

/** Runs the steps asked for before the commit (a failure fails the transaction), including any they add. */
export async function finishUnit(tx: object): Promise<void> {
  const unit = units.get(tx);
  while (unit?.beforeCommit.length) await unit.beforeCommit.shift()!();
}

/** Ends the unit and returns what it asked for after the commit (to run only once the transaction has committed). */
export function closeUnit(tx: object): Array<() => void> {
  const unit = units.get(tx);
  units.delete(tx);
  return unit?.afterCommit ?? [];
}
