import type { AccessRequest, Prisma, RequestStatus } from "@prisma/client";
import { recordEvent, rememberRequest, type Actor } from "../audit/record";
import type { Tx } from "../db";
import { join, raw, sql, sqlRows } from "../db/sql";
import { forgetView, writeRequestRow } from "./rows";
import { conflict, notFound } from "../errors";
import { QUEUES, queueInTransaction, type RequestJob } from "../jobs/queue";
import { notificationsOn } from "../notifications/outbox";
import { policy } from "../policy/current";
import { canTransition } from "./state-machine";

/**
 * The one writer of a request's status. Every move is checked against the state machine,
 * written only if the row still holds the status the caller read (so a concurrent change is
 * found, not overwritten), audited, and followed by the jobs the new state needs, all in the
 * caller's transaction. Nothing else writes `status` (lint rule in eslint.config.mjs).
 */

/** One move of a request: its audit event, and the other columns that change with it. */
export interface Step {
  actor: Actor;
  action: string;
  data?: Prisma.InputJsonObject;
  patch?: Omit<Prisma.AccessRequestUpdateManyMutationInput, "status">;
}

/** What the writer needs of a request: its id, and the status the caller read (under the row lock, where it holds one). */
export type Current = Pick<AccessRequest, "id" | "status">;

/** Takes the row lock of a request for the rest of the transaction and returns its status. */
export async function lockRequest(tx: Tx, requestId: string): Promise<RequestStatus> {
  const rows = await sqlRows<{ status: RequestStatus }>(tx, sql`SELECT status FROM "AccessRequest" WHERE id = ${requestId} FOR UPDATE`);
  if (rows.length === 0) throw notFound("Request");
  return rows[0]!.status;
}

/** Moves a request to `to` with its audit event and follow-up jobs; returns the request as it leaves it. */
export async function transition(tx: Tx, request: Current, to: RequestStatus, step: Step): Promise<AccessRequest> {
  const moves = new Moves(request);
  await moves.to(tx, to, step);
  return moves.write(tx);
}

/**
 * Several moves of one request in a row (approved → executing → active), each checked and
 * audited in order as it is made, written as one update at the end: the caller holds the
 * row lock (or has just inserted the row), and nothing reads the row in between.
 */
export class Moves {
  private current: RequestStatus;
  private patch: Step["patch"] = {};

  constructor(private readonly request: Current) {
    this.current = request.status;
  }

  async to(tx: Tx, to: RequestStatus, step: Step): Promise<void> {
    if (!canTransition(this.current, to)) throw conflict(`This request is ${this.current}; it cannot become ${to}.`);
    await recordEvent(tx, { actor: step.actor, action: step.action, requestId: this.request.id, fromStatus: this.current, toStatus: to, data: step.data });
    this.current = to;
    Object.assign(this.patch!, step.patch);
  }

  /** Writes the moves so far, if the row still holds the status they started from, and queues what the new state needs. */
  async write(tx: Tx): Promise<AccessRequest> {
    const written = await updateRequestIf(tx, { id: this.request.id, status: this.request.status }, { ...this.patch, status: this.current });
    if (!written) throw conflict(`This request changed meanwhile (it is no longer ${this.request.status}); look at it again.`);
    await queueFollowUps(tx, written);
    return written;
  }
}

/** Records a new request, pending its first approval stage. Its jobs are queued by what happens to it next in the transaction (queueFollowUps when it waits). */
export async function openRequest(
  tx: Tx,
  data: Omit<Prisma.AccessRequestUncheckedCreateInput, "status">,
  event: { actor: Actor; data: Prisma.InputJsonObject },
): Promise<AccessRequest> {
  const request = await insertRequestRow(tx, data);
  rememberRequest(request);
  await recordEvent(tx, { actor: event.actor, action: "request.created", requestId: request.id, toStatus: "pending", data: event.data });
  return request;
}

/** What must happen later for a request in the state it is left in: its expiry, its pending timeout, its execution or clean-up, its notifications. */
export function followUps(request: AccessRequest): RequestJob[] {
  const jobs: RequestJob[] = [];
  const job = (queue: string, at: Date) => jobs.push({ queue, requestId: request.id, at });
  const now = new Date();
  if (request.status === "active" && request.expiresAt) {
    job(QUEUES.expireGrant, request.expiresAt);
    const notice = policy().defaults.expiringNotice * 1000;
    if (request.expiresAt.getTime() - now.getTime() > notice) job(QUEUES.notifyExpiring, new Date(request.expiresAt.getTime() - notice));
  }
  if (request.status === "executing") job(QUEUES.execute, now);
  if (request.undoPending) job(QUEUES.undo, now);
  if (notificationsOn()) job(QUEUES.notifyFlush, now);
  if (request.status === "pending" && request.pendingExpiresAt) job(QUEUES.expirePending, request.pendingExpiresAt);
  return jobs;
}

/** Queues followUps in the caller's transaction: done by every status write, and by the few changes that keep the status but need jobs (a new request waiting, a stage passed). */
export function queueFollowUps(tx: Tx, request: AccessRequest): Promise<void> {
  return queueInTransaction(tx, followUps(request));
}

/*
 * The writer's two statements, through the driver (lib/db/sql.ts): here, beside the only
 * code that may call them, because they write `status` (the lint rule in eslint.config.mjs
 * exempts this file alone).
 */

/** A column the writer may set, as plain values only: Dates, text, numbers, booleans, null. */
type Plain = Date | string | number | boolean | null;
const COLUMN = /^[A-Za-z][A-Za-z0-9]*$/;

/**
 * Writes `data` to a request if it still holds `status`, and returns the row as written
 * (none if it no longer held it). `updatedAt` is set as Prisma's @updatedAt sets it. Data
 * that is not plain values (a Prisma operation such as `{ increment: 1 }`) goes through
 * Prisma's client instead.
 */
async function updateRequestIf(
  tx: Tx,
  where: { id: string; status: AccessRequest["status"] },
  data: Prisma.AccessRequestUpdateManyMutationInput,
): Promise<AccessRequest | undefined> {
  const entries = Object.entries(data).filter(([, value]) => value !== undefined);
  const plain = entries.every(
    ([column, value]) => COLUMN.test(column) && (value === null || value instanceof Date || ["string", "number", "boolean"].includes(typeof value)),
  );
  if (!plain) {
    // Written by Prisma's client, so a view an earlier write returned (writeRequestRow) would be out of date.
    forgetView(tx, where.id);
    return (await tx.accessRequest.updateManyAndReturn({ where, data }))[0];
  }
  // As Prisma's @updatedAt: now, unless the caller sets it.
  const sets = [...entries, ...("updatedAt" in data ? [] : [["updatedAt", new Date()] as const])].map(
    ([column, value]) => sql`${raw(`"${column}"`)} = ${value as Plain}${raw(column === "status" ? `::"RequestStatus"` : "")}`,
  );
  return (
    (await writeRequestRow(
      tx,
      sql`UPDATE "AccessRequest" SET ${join(sets, ", ")} WHERE id = ${where.id} AND status = ${where.status}::"RequestStatus"`,
      where.id,
    )) ?? undefined
  );
}

/** The request's columns that hold JSON, written as jsonb (the rest are plain values, or text arrays). */
const JSON_COLUMNS = new Set(["input", "stages"]);

/**
 * Inserts a new request, pending, with the defaults Prisma's client would write
 * (prisma/schema.prisma; its id is the database's), and returns its row.
 */
async function insertRequestRow(tx: Tx, data: Omit<Prisma.AccessRequestUncheckedCreateInput, "status">): Promise<AccessRequest> {
  const now = new Date();
  const row: Record<string, unknown> = {
    currentStage: 0,
    currentStageGroups: [],
    breakGlass: false,
    undoPending: false,
    createdAt: now,
    updatedAt: now,
    ...Object.fromEntries(Object.entries(data).filter(([, value]) => value !== undefined)),
    status: "pending",
  };
  const columns = Object.keys(row);
  const bad = columns.find((column) => !COLUMN.test(column));
  if (bad) throw new Error(`"${bad}" is not a column name`);
  const values = columns.map((column) => {
    const value = row[column];
    if (JSON_COLUMNS.has(column)) return sql`${JSON.stringify(value)}::jsonb`;
    if (column === "status") return sql`${value as string}::"RequestStatus"`;
    return sql`${value as Plain | string[]}`;
  });
  const inserted = await writeRequestRow(
    tx,
    sql`INSERT INTO "AccessRequest" (${join(
      columns.map((column) => raw(`"${column}"`)),
      ", ",
    )}) VALUES (${join(values, ", ")})`,
  );
  return inserted!;
}
