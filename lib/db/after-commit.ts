import type { Prisma } from "@prisma/client";

/**
 * A transaction as a unit of work: what its code asks to run just before it commits (still
 * inside it: writing the audit events it buffered, lib/audit/record.ts) and once it has
 * committed, never if it rolls back (forgetting what its changes made stale in this process's
 * caches, waking the audit chainer). db.$transaction (lib/db.ts) opens the unit, runs the
 * steps before its commit in order, and the rest after. Nothing is registered at import, so a
 * transaction works the same in a process that never loaded the code that adds to it.
 *
 * A write that returns nothing and needs nothing back before the commit (the jobs a change
 * queues, lib/jobs/queue.ts) can ride along instead of taking a round trip of its own: the
 * step that sends the transaction's last statement (the audit events') takes it as common
 * table expressions of that statement (takeRiders); one that no statement took is sent by
 * itself once the other steps are done.
 */
interface Unit {
  beforeCommit: Array<() => Promise<void>>;
  afterCommit: Array<() => void>;
  riders: Map<string, Rider>;
  /** Set once its code is done and finishUnit runs the steps before the commit. */
  finishing?: boolean;
}

/** A write that rides along: `build` gives it as items of a WITH list (`name AS (INSERT ...)`), or null when it cannot ride; `alone` sends it by itself. */
export interface Rider {
  build: () => Promise<Prisma.Sql | null>;
  alone: () => Promise<void>;
}

const units = new WeakMap<object, Unit>();

export function openUnit(tx: object): void {
  units.set(tx, { beforeCommit: [], afterCommit: [], riders: new Map() });
}

/** Whether `tx` is a transaction opened by db.$transaction (a unit of work). */
export function isUnit(tx: object): boolean {
  return units.has(tx);
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

/**
 * Lets a write ride along in the statement a later step sends before the commit (see Unit),
 * once per `key` and transaction; false when `tx` is not a transaction opened by
 * db.$transaction (nothing is kept: the caller sends it at once).
 */
export function rideAlong(tx: object, key: string, rider: Rider): boolean {
  const unit = units.get(tx);
  if (!unit) return false;
  if (!unit.riders.has(key)) unit.riders.set(key, rider);
  return true;
}

/**
 * The writes waiting to ride along, as items of a WITH list each, for the statement about to
 * be sent; each is taken once. One that cannot ride stays, and is sent by itself.
 */
export async function takeRiders(tx: object): Promise<Prisma.Sql[]> {
  const unit = units.get(tx);
  if (!unit?.riders.size) return [];
  const taken: Prisma.Sql[] = [];
  for (const [key, rider] of [...unit.riders]) {
    // Taken before it is built: a write of the same kind asked for meanwhile rides on its own.
    unit.riders.delete(key);
    const tables = await rider.build();
    if (tables) taken.push(tables);
    else if (!unit.riders.has(key)) unit.riders.set(key, rider);
  }
  return taken;
}

/** Runs the steps asked for before the commit (a failure fails the transaction), including any they add; then sends by itself each write no step took along. */
export async function finishUnit(tx: object): Promise<void> {
  const unit = units.get(tx);
  if (!unit) return;
  unit.finishing = true;
  for (;;) {
    while (unit.beforeCommit.length) await unit.beforeCommit.shift()!();
    const [key, rider] = unit.riders.entries().next().value ?? [];
    if (key === undefined) return;
    unit.riders.delete(key);
    await rider!.alone();
  }
}

/**
 * Whether a statement sent now would be `tx`'s last: its code is done, and the step before the
 * commit that runs now is the last, with no write left to ride along or be sent by itself. Its
 * COMMIT may then go out right behind it (lib/db/sql.ts, sqlRunLast). A step asks just before
 * its last statement, once it has taken the riders it carries.
 */
export function lastStatement(tx: object): boolean {
  const unit = units.get(tx);
  return Boolean(unit?.finishing && unit.beforeCommit.length === 0 && unit.riders.size === 0);
}

/** Ends the unit and returns what it asked for after the commit (to run only once the transaction has committed). */
export function closeUnit(tx: object): Array<() => void> {
  const unit = units.get(tx);
  units.delete(tx);
  return unit?.afterCommit ?? [];
}
