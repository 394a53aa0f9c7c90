import type { AccessRequest, Prisma, RequestStatus } from "@prisma/client";
import { recordEvent, type Actor } from "../audit/record";
import type { Tx } from "../db";
import { conflict, notFound } from "../errors";

/**
 * The request lifecycle, in one place:
 * draft → pending → approved → executing → active → expired | revoked,
 * or executing → completed for one-off actions (a job run), with side exits rejected,
 * cancelled and failed.
 */
export const TRANSITIONS: Readonly<Record<RequestStatus, readonly RequestStatus[]>> = {
  draft: ["pending", "cancelled"],
  pending: ["approved", "rejected", "cancelled", "expired"],
  approved: ["executing", "failed"],
  executing: ["active", "completed", "failed"],
  active: ["expired", "revoked", "failed"],
  completed: [],
  expired: [],
  revoked: [],
  rejected: [],
  cancelled: [],
  failed: [],
};

export const TERMINAL: readonly RequestStatus[] = ["completed", "expired", "revoked", "rejected", "cancelled", "failed"];

export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Takes the row lock of a request for the rest of the transaction and returns its status. */
export async function lockRequest(tx: Tx, requestId: string): Promise<RequestStatus> {
  const rows = await tx.$queryRaw<{ status: RequestStatus }[]>`
    SELECT status FROM "AccessRequest" WHERE id = ${requestId} FOR UPDATE`;
  if (rows.length === 0) throw notFound("Request");
  return rows[0]!.status;
}

export interface TransitionInput {
  requestId: string;
  to: RequestStatus;
  actor: Actor;
  action: string;
  data?: Prisma.InputJsonObject;
  patch?: Prisma.AccessRequestUpdateManyMutationInput;
  /** The status the caller read under the row lock it holds in this transaction: no need to read it again. */
  lockedFrom?: RequestStatus;
}

/**
 * Moves a request to `to` and records the audit event, in the caller's transaction.
 * The row is locked first, so concurrent transitions of one request run one after the
 * other and the second sees the first one's result. Moving to the state the request is
 * already in is a no-op (idempotent); any other move not in TRANSITIONS is a conflict.
 */
export async function transition(tx: Tx, input: TransitionInput): Promise<{ from: RequestStatus; changed: boolean; request?: AccessRequest }> {
  const from = input.lockedFrom ?? (await lockRequest(tx, input.requestId));
  if (from === input.to) return { from, changed: false };
  if (!canTransition(from, input.to)) {
    throw conflict(`This request is ${from}; it cannot become ${input.to}.`);
  }
  const request = await tx.accessRequest.update({ where: { id: input.requestId }, data: { ...input.patch, status: input.to } });
  await recordEvent(tx, {
    actor: input.actor,
    action: input.action,
    requestId: input.requestId,
    fromStatus: from,
    toStatus: input.to,
    data: input.data,
  });
  return { from, changed: true, request };
}

/**
 * Several moves of one request in a row (approved → executing → active), each checked
 * against TRANSITIONS and audited in order like `transition`, but written as one update at
 * the end: the caller holds the row lock, and nothing reads the row in between.
 */
export class Moves {
  private patch: Prisma.AccessRequestUpdateManyMutationInput = {};

  constructor(
    readonly requestId: string,
    /** The status read under the row lock the caller holds. */
    private current: RequestStatus,
  ) {}

  async to(tx: Tx, move: Omit<TransitionInput, "requestId" | "lockedFrom">): Promise<void> {
    if (!canTransition(this.current, move.to)) throw conflict(`This request is ${this.current}; it cannot become ${move.to}.`);
    await recordEvent(tx, { actor: move.actor, action: move.action, requestId: this.requestId, fromStatus: this.current, toStatus: move.to, data: move.data });
    this.current = move.to;
    Object.assign(this.patch, move.patch);
  }

  /** Writes the moves so far; returns the request as they leave it. */
  write(tx: Tx): Promise<AccessRequest> {
    return tx.accessRequest.update({ where: { id: this.requestId }, data: { ...this.patch, status: this.current } });
  }
}
