import "server-only";
import type { z } from "zod";
import { getRequestView, type RequestListItem } from "../approvals/queries";
import type { Principal } from "../policy/evaluate";
import { policy } from "../policy/current";
import { requestableTargets } from "../policy/evaluate";
import { describeFields } from "../workflows/fields";
import { listWorkflows } from "../workflows/registry";

/** The shapes /api/v1 answers with (documented in lib/api/openapi.ts). Dates are ISO strings. */

export function workflowsFor(who: Principal) {
  const p = policy();
  return listWorkflows()
    .map((w) => ({
      id: w.id,
      title: w.title,
      description: w.description,
      category: w.category,
      risk: w.risk,
      lasting: Boolean(w.lasting),
      fields: describeFields(w.inputSchema as unknown as z.ZodObject).map(({ name, label, help, kind, required, options, optionsFrom }) => ({ name, label, help, kind, required, options, optionsFrom })),
      targets: requestableTargets(p, w.id, who).map(({ targetId, target, rule }) => ({
        id: targetId,
        title: target.title,
        roles: rule.roles ?? [],
        minDurationMinutes: Math.ceil(rule.minDuration / 60),
        maxDurationMinutes: rule.maxDuration === undefined ? null : Math.floor(rule.maxDuration / 60),
        stages: rule.stages.map((st) => ({ name: st.name, groups: st.groups, required: st.required })),
      })),
    }))
    .filter((w) => w.targets.length > 0);
}

export function requestSummary(r: RequestListItem) {
  return {
    id: r.id,
    workflowId: r.workflowId,
    targetId: r.targetId,
    targetTitle: r.targetTitle,
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

/** One request as its requester, an approver or an auditor may see it; refuses others as not found. */
export async function requestDetail(who: Principal, id: string) {
  const r = await getRequestView(who, id);
  return {
    id: r.id,
    workflowId: r.workflowId,
    targetId: r.targetId,
    targetTitle: r.targetTitle,
    status: r.status,
    requester: r.requester.email,
    input: r.input,
    justification: r.justification,
    durationSeconds: r.durationSeconds,
    breakGlass: r.breakGlass,
    autoApprovedBy: r.autoApprovedBy,
    createdAt: r.createdAt,
    decidedAt: r.decidedAt,
    activatedAt: r.activatedAt,
    expiresAt: r.expiresAt,
    endedAt: r.endedAt,
    failureReason: r.failureReason,
    externalState: r.externalState,
    stages: r.stageViews.map((st) => ({ name: st.name, groups: st.groups, required: st.required, state: st.state, approvedBy: st.approvedBy, couldApprove: st.eligible })),
    decisions: r.decisions.map((d) => ({ approver: d.approver.email, decision: d.decision, comment: d.comment, stage: d.stage, at: d.createdAt })),
    credential: r.credential
      ? { jti: r.credential.id, kid: r.credential.kid, issuedAt: r.credential.issuedAt, expiresAt: r.credential.expiresAt, revealedAt: r.credential.revealedAt, revokedAt: r.credential.revokedAt, revealable: r.credential.revealable }
      : null,
    secretRevealable: r.secretRevealable,
    viewer: { canDecide: r.viewer.canDecide && !who.requestOnly, decisionRefusal: r.viewer.decisionRefusal, canCancel: r.viewer.canCancel, canRevoke: r.viewer.canRevoke },
  };
}
