import "server-only";
import { getRequestView, type RequestListItem } from "../approvals/queries";
import type { Principal } from "../policy/evaluate";
import type { WriteView } from "../approvals/rows";
import { createRequest, decide, type CreateHooks, type DecisionInput } from "../approvals/engine";
import type { RequestDetail, RequestSummary } from "./schemas";

/** The answers of /api/v1, typed by the zod schemas that generate the OpenAPI document (lib/api/schemas.ts). Dates become ISO strings in JSON. */

type Summarised = Pick<
  RequestListItem,
  | "id"
  | "workflowId"
  | "targetId"
  | "targetTitle"
  | "workflowTitle"
  | "fields"
  | "status"
  | "input"
  | "justification"
  | "durationSeconds"
  | "breakGlass"
  | "createdAt"
  | "activatedAt"
  | "expiresAt"
> & { requester: { email: string } };

export function requestSummary(r: Summarised): RequestSummary {
  return {
    id: r.id,
    workflowId: r.workflowId,
    targetId: r.targetId,
    targetTitle: r.targetTitle,
    workflowTitle: r.workflowTitle,
    fields: r.fields.map(({ name, label, value, format }) => ({ name, label, value, format })),
    status: r.status,
    requester: r.requester.email,
    input: r.input,
    justification: r.justification,
    durationSeconds: r.durationSeconds,
    breakGlass: r.breakGlass,
    createdAt: r.createdAt,
    activatedAt: r.activatedAt,
    expiresAt: r.expiresAt,
  };
}

/**
 * Makes a request and answers with it as its transaction left it: returned by its write, not
 * read again after the commit (WriteView, lib/approvals/rows.ts).
 */
export async function madeRequestDetail(who: Principal, workflowId: string, input: unknown, hooks: Omit<CreateHooks, "view"> = {}): Promise<RequestDetail> {
  const view: WriteView = { viewerId: who.id };
  const made = await createRequest(who, workflowId, input, { ...hooks, view });
  return requestDetail(who, made.id, view);
}

/** Approves or rejects a request and answers with it as the decision left it (WriteView, as madeRequestDetail). */
export async function decidedRequestDetail(who: Principal, input: DecisionInput): Promise<RequestDetail> {
  const view: WriteView = { viewerId: who.id };
  await decide(who, input, undefined, view);
  return requestDetail(who, input.requestId, view);
}

/**
 * One request as its requester, an approver or an auditor may see it; refuses others as not found.
 * `view`: the request as the caller's transaction left it, when that transaction's write returned it (WriteView).
 */
export async function requestDetail(who: Principal, id: string, view?: WriteView): Promise<RequestDetail> {
  const r = await getRequestView(who, id, { timeline: false, viewed: view?.viewed });
  return {
    ...requestSummary(r),
    autoApprovedBy: r.autoApprovedBy,
    decidedAt: r.decidedAt,
    endedAt: r.endedAt,
    failureReason: r.failureReason,
    externalState: r.externalState,
    breakGlassReason: r.breakGlassReason,
    extends: r.extension ? { id: r.extension.id, status: r.extension.status, expiresAt: r.extension.expiresAt, changes: r.extension.changes } : null,
    stages: r.stageViews.map((st) => ({
      name: st.name,
      groups: st.groups,
      required: st.required,
      state: st.state,
      approvedBy: st.approvedBy,
      couldApprove: st.eligible,
    })),
    decisions: r.decisions.map((d) => ({ approver: d.approver.email, decision: d.decision, comment: d.comment, stage: d.stage, at: d.createdAt })),
    credential: r.credential
      ? {
          jti: r.credential.id,
          kid: r.credential.kid,
          issuedAt: r.credential.issuedAt,
          expiresAt: r.credential.expiresAt,
          revealedAt: r.credential.revealedAt,
          revokedAt: r.credential.revokedAt,
          revealable: r.credential.revealable,
        }
      : null,
    secretRevealable: r.secretRevealable,
    outsidePreview: r.outsidePreview,
    viewer: {
      canDecide: r.viewer.canDecide && !who.requestOnly,
      decisionRefusal: r.viewer.decisionRefusal,
      canCancel: r.viewer.canCancel,
      canRevoke: r.viewer.canRevoke,
    },
  };
}
