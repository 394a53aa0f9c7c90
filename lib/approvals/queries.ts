import "server-only";
import type { Prisma, RequestStatus } from "@prisma/client";
import { db } from "../db";
import { viewedRequestRow, type Approver, type ViewedRequest } from "./rows";
import { notFound } from "../errors";
import { approvalRefusal, openGroups, sameParty, type ApprovalState, type Principal } from "../policy/evaluate";
import { approvalStateOf } from "./engine";
import { onCallApprover } from "./on-call";
import { partiesFrom, partyMembers } from "../identity/parties";
import { policy } from "../policy/current";
import { requestStages } from "../policy/stages";
import { getWorkflow } from "../workflows/registry";
import type { OutsidePreview } from "../workflows/types";
import { changedFields, describeRequestInput, type RequestField } from "../workflows/request-fields";

/** Read models for the pages and routes. Each checks who may see what. */

/** An audit event with its bigint ids as strings, ready for pages and JSON (no place in the chain yet: seq null). */
export function plainEvent<E extends { id: bigint; seq: bigint | null }>(e: E): Omit<E, "id" | "seq"> & { id: string; seq: string | null } {
  return { ...e, id: e.id.toString(), seq: e.seq?.toString() ?? null };
}

const requestListSelect = {
  id: true,
  workflowId: true,
  targetId: true,
  status: true,
  input: true,
  justification: true,
  durationSeconds: true,
  createdAt: true,
  activatedAt: true,
  expiresAt: true,
  breakGlass: true,
  reviewedAt: true,
  requester: { select: { email: true, name: true } },
} satisfies Prisma.AccessRequestSelect;

export type RequestListItem = Prisma.AccessRequestGetPayload<{ select: typeof requestListSelect }> & {
  targetTitle: string;
  workflowTitle: string;
  fields: RequestField[];
};

/** The workflow's title and the requester's fields as the workflow's schema labels them. */
export function describeRequest(r: { workflowId: string; targetId: string; input: unknown }): {
  targetTitle: string;
  workflowTitle: string;
  fields: RequestField[];
} {
  const targetTitle = policy().targets[r.targetId]?.title ?? r.targetId;
  const workflow = getWorkflow(r.workflowId);
  const input = (r.input ?? {}) as Record<string, unknown>;
  if (!workflow)
    return {
      targetTitle,
      workflowTitle: r.workflowId,
      fields: Object.entries(input).map(([name, value]) => ({ name, label: name, format: "text", value: String(value) })),
    };
  return { targetTitle, workflowTitle: workflow.title, fields: describeRequestInput(workflow.inputSchema, input, { targetTitle }) };
}

function withTitles<T extends { targetId: string; workflowId: string; input: unknown }>(
  rows: T[],
): (T & { targetTitle: string; workflowTitle: string; fields: RequestField[] })[] {
  return rows.map((r) => ({ ...r, ...describeRequest(r) }));
}

/** A keyset page for the API: at most `take` rows after the row at (createdAt, id) in the list's order. */
export interface Keyset {
  take: number;
  after: { createdAt: Date; id: string } | null;
}

const afterRow = (after: Keyset["after"], direction: "lt" | "gt"): Prisma.AccessRequestWhereInput =>
  after ? { OR: [{ createdAt: { [direction]: after.createdAt } }, { createdAt: after.createdAt, id: { [direction]: after.id } }] } : {};

export async function listMyRequests(who: Principal, page: Keyset = { take: 100, after: null }): Promise<RequestListItem[]> {
  const rows = await db.accessRequest.findMany({
    where: { requesterId: who.id, ...afterRow(page.after, "lt") },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: page.take,
    select: requestListSelect,
  });
  return withTitles(rows);
}

/** Pending requests this person could approve and has not decided on yet. */
export async function inboxFor(who: Principal, page: Keyset = { take: 200, after: null }): Promise<RequestListItem[]> {
  if (!who.roles.includes("approver")) return [];
  const rows = await db.accessRequest.findMany({
    where: {
      status: "pending",
      requesterId: { notIn: await partyMembers(db, who.id) },
      currentStageGroups: { hasSome: who.groups },
      decisions: { none: { approverId: who.id } },
      ...afterRow(page.after, "gt"),
    },
    orderBy: [{ createdAt: "asc" }, { id: "asc" }],
    take: page.take,
    select: requestListSelect,
  });
  return withTitles(rows);
}

/** The person's last distinct workflow and target pairs that they may still request. */
export async function recentlyUsed(who: Principal, available: { id: string; title: string; targets: { id: string; title: string }[] }[], limit = 4) {
  const rows = await db.accessRequest.findMany({
    where: { requesterId: who.id },
    orderBy: { createdAt: "desc" },
    take: 50,
    select: { workflowId: true, targetId: true },
  });
  const seen = new Set<string>();
  const recent: { workflowId: string; workflowTitle: string; targetId: string; targetTitle: string }[] = [];
  for (const r of rows) {
    const key = `${r.workflowId}/${r.targetId}`;
    const workflow = available.find((w) => w.id === r.workflowId);
    const target = workflow?.targets.find((t) => t.id === r.targetId);
    if (seen.has(key) || !workflow || !target) continue;
    seen.add(key);
    recent.push({ workflowId: workflow.id, workflowTitle: workflow.title, targetId: target.id, targetTitle: target.title });
    if (recent.length === limit) break;
  }
  return recent;
}

/** Break-glass grants awaiting a review this person may give. */
export async function reviewsFor(who: Principal): Promise<RequestListItem[]> {
  if (!who.roles.includes("approver")) return [];
  const rows = await db.accessRequest.findMany({
    where: { breakGlass: true, reviewedAt: null, requesterId: { notIn: await partyMembers(db, who.id) } },
    orderBy: { createdAt: "asc" },
    take: 200,
    select: { ...requestListSelect, stages: true },
  });
  const mine = rows.filter((r) => requestStages(r).some((st) => st.groups.some((g) => who.groups.includes(g))));
  return withTitles(mine.map(({ stages: _, ...r }) => r));
}

function isEligibleApprover(who: Principal, requesterId: string, stages: { groups: string[] }[]): boolean {
  return requesterId !== who.id && who.roles.includes("approver") && stages.some((st) => st.groups.some((g) => who.groups.includes(g)));
}

/** Who may read a request: its requester, an approver of one of its stages, auditors and admins. */
export function mayViewRequest(who: Principal, requesterId: string, stages: { groups: string[] }[]): boolean {
  return requesterId === who.id || isEligibleApprover(who, requesterId, stages) || who.roles.includes("auditor") || who.roles.includes("admin");
}

/**
 * A request as its page and the API show it, to those who may read it. `viewed`: its row as
 * the caller's own transaction left it, when it asked for it at the write (WriteView,
 * lib/approvals/rows.ts), so it is not read again.
 */
export async function getRequestView(who: Principal, id: string, options: { timeline?: boolean; viewed?: ViewedRequest } = {}) {
  // The request, its requester, decisions and credential, and the owners of its parties: one statement (lib/approvals/rows.ts).
  const viewed = options.viewed?.request.id === id ? options.viewed : await viewedRequestRow(db, id, who.id);
  if (!viewed) throw notFound("Request");
  const { request, owners, approvers } = viewed;
  // Whoever is on call for the current stage's schedule may decide on it, and so sees the decision panel.
  if (request.status === "pending") who = (await onCallApprover(who, requestStages(request)[request.currentStage])).who;
  const state = approvalStateOf(request, request.decisions, partiesFrom([request.requesterId, who.id, ...request.decisions.map((d) => d.approverId)], owners));
  const refusal = approvalRefusal(state, who);
  const eligibleForRequest = isEligibleApprover(who, request.requesterId, state.stages);
  if (!mayViewRequest(who, request.requesterId, state.stages)) throw notFound("Request");
  // The API's answers carry no timeline; only the request page shows it.
  const timeline = options.timeline === false ? [] : await db.auditEvent.findMany({ where: { requestId: id }, orderBy: { id: "asc" } });
  const stages = stageViews(request, state, approvers);
  const { credential, sealedSecret, ...rest } = request;
  const described = describeRequest(request);
  return {
    ...rest,
    outsidePreview: outsidePreviewOf(request),
    ...described,
    extension: request.extendsRequestId ? await extensionOf(request.extendsRequestId, described.fields) : null,
    secretRevealable: sealedSecret !== null && request.status === "active",
    credential: credential && { ...credential, sealedToken: undefined, revealable: credential.sealedToken !== null && credential.revokedAt === null },
    timeline: timeline.map(plainEvent),
    stageViews: stages,
    viewer: {
      isRequester: request.requesterId === who.id,
      canDecide: request.status === "pending" && refusal === null,
      canReview: request.breakGlass && !request.reviewedAt && eligibleForRequest && !sameParty(state.parties, request.requesterId, who.id),
      decisionRefusal: refusal,
      canRevoke: request.status === "active" && (request.requesterId === who.id || who.roles.includes("admin")),
      canCancel: request.status === "pending" && request.requesterId === who.id,
    },
  };
}

/** What the request sends to an outside system, as its workflow builds it; none for workflows that call none. */
function outsidePreviewOf(request: {
  id: string;
  workflowId: string;
  targetId: string;
  input: Prisma.JsonValue;
  requester: { email: string };
}): OutsidePreview | null {
  const workflow = getWorkflow(request.workflowId);
  if (!workflow?.preview) return null;
  const input = workflow.inputSchema.safeParse(request.input);
  if (!input.success)
    return { system: workflow.title, calls: [], notes: ["This request's input no longer matches the workflow's form, so it cannot be carried out."] };
  return workflow.preview({ requestId: request.id, requesterEmail: request.requester.email, input: input.data, target: policy().targets[request.targetId] });
}

/** The grant an extension replaces, and what the extension changes against it. */
async function extensionOf(parentId: string, fields: RequestField[]) {
  const parent = await db.accessRequest.findUnique({
    where: { id: parentId },
    select: { id: true, workflowId: true, targetId: true, input: true, status: true, expiresAt: true },
  });
  if (!parent) return null;
  return { id: parent.id, status: parent.status, expiresAt: parent.expiresAt, changes: changedFields(describeRequest(parent).fields, fields) };
}

/**
 * Each stage with its approvals and, while it is not passed, the people who could still
 * approve it: of `approvers` (who could approve any of its stages, read with the request,
 * lib/approvals/rows.ts), those in the stage's groups still open who have not decided.
 */
function stageViews(
  request: {
    requesterId: string;
    status: RequestStatus;
    currentStage: number;
    decisions: { approverId: string; stage: number; decision: string; approver: { email: string } }[];
  },
  state: ApprovalState,
  approvers: readonly Approver[],
) {
  const decided = new Set(request.decisions.map((d) => d.approverId));
  return state.stages.map((stage, index) => {
    const approvedBy = request.decisions.filter((d) => d.stage === index && d.decision === "approve").map((d) => d.approver.email);
    const passed =
      index < request.currentStage ||
      (index === request.currentStage && ["approved", "executing", "active", "expired", "revoked"].includes(request.status) && approvedBy.length > 0);
    const open = request.status === "pending" && index >= request.currentStage;
    const still = open
      ? openGroups(
          stage,
          state.decisions.filter((d) => d.stage === index && d.decision === "approve"),
          state.parties,
          state.requesterId,
        )
      : [];
    return {
      ...stage,
      index,
      state: passed
        ? ("passed" as const)
        : index === request.currentStage && request.status === "pending"
          ? ("current" as const)
          : open
            ? ("waiting" as const)
            : ("closed" as const),
      approvedBy,
      eligible: open ? approvers.filter((u) => !decided.has(u.id) && u.groups.some((g) => still.includes(g))).map((u) => u.email) : [],
    };
  });
}

export type RequestView = Awaited<ReturnType<typeof getRequestView>>;
