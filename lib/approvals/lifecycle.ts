import type { AccessRequest } from "@prisma/client";
import { db, type Tx } from "../db";
import { sql, sqlRows } from "../db/sql";
import { notFound } from "../errors";
import { policy } from "../policy/current";
import type { ApprovalState, DecisionSnapshot, Parties } from "../policy/evaluate";
import { requestStages } from "../policy/stages";
import { entitlementRefusal } from "../identity/entitlements";
import { getWorkflow } from "../workflows/registry";
import type { WorkflowModule } from "../workflows/types";

/**
 * What every operation on a request shares: the transaction (inTransaction), the workflow
 * lookup, the approval state, and the directory check made under the request's row lock.
 * Status changes and their jobs are transition.ts's.
 */

export const TX = { maxWait: 15_000, timeout: 30_000 } as const;

export const REQUEST_ONLY = "This service identity is marked request-only: it can never approve, reject or review.";

export function workflowOf(id: string): WorkflowModule {
  const workflow = getWorkflow(id);
  if (!workflow) throw notFound(`Workflow "${id}"`);
  return workflow;
}

/**
 * The one way the lifecycle opens a transaction: a change to requests commits with its
 * audit events and, through the writer (transition.ts), the jobs that follow from it, or
 * none of them does.
 */
export function inTransaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
  return db.$transaction(work, TX);
}

export function approvalStateOf(
  request: Pick<AccessRequest, "requesterId" | "stages" | "currentStage">,
  decisions: Pick<DecisionSnapshot, "approverId" | "stage" | "approverGroups" | "decision">[],
  parties: Parties,
): ApprovalState {
  return { requesterId: request.requesterId, stages: requestStages(request), currentStage: request.currentStage, decisions, parties };
}

/**
 * Why the requester may no longer have what a request grants, read under the request's row
 * lock (the caller holds it) with the requester's row shared, so a directory change either
 * committed before (and is seen here) or waits and then finds the grant active and revokes it.
 */
export async function directoryRefusal(
  tx: Tx,
  request: AccessRequest,
  /** The requester's row, when the caller has already read it under a share lock in this transaction. */
  shared?: { id: string; email: string; groups: string[]; active: boolean },
): Promise<string | null> {
  // Read under a share lock (one statement): a directory change to this person waits for the commit, and one made first is seen.
  const [holder] = shared
    ? [shared]
    : await sqlRows<{ id: string; email: string; groups: string[]; active: boolean }>(
        tx,
        sql`SELECT id, email, groups, active FROM "User" WHERE id = ${request.requesterId} FOR SHARE`,
      );
  if (!holder) throw new Error(`the requester ${request.requesterId} of request ${request.id} is not in the database`);
  const refusal = entitlementRefusal(policy(), holder, request);
  return refusal ? `directory: ${refusal}` : null;
}
