/**
 * What a transaction asks this process to do once it has committed, and never if it rolls
 * back: forget what its changes made stale in this process's caches, wake the audit chainer
 * (lib/audit/record.ts). The transaction is the unit of work: db.$transaction (lib/db.ts)
 * opens a list for it and runs the list after the commit; code holding the transaction adds
 * to it with `afterCommit`. Nothing is registered at import, so a transaction works the same
 * in a process that never loaded the code that adds to it.
 */
const units = new WeakMap<object, Array<() => void>>();

export function openUnit(tx: object): void {
  units.set(tx, []);
}

/** Runs `run` once `tx` commits; false when `tx` is not a transaction opened by db.$transaction (nothing is queued). */
export function afterCommit(tx: object, run: () => void): boolean {
  const unit = units.get(tx);
  if (!unit) return false;
  unit.push(run);
  return true;
}

/** Ends the unit and returns what it asked for (to run only once the transaction has committed). */
export function closeUnit(tx: object): Array<() => void> {
  const unit = units.get(tx) ?? [];
  units.delete(tx);
  return unit;
}
