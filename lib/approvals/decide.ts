import type { AccessRequest, Decision } from "@prisma/client";
import { actorOf, recordEvent, rememberRequest, SYSTEM } from "../audit/record";
import { db, type Tx } from "../db";
import { forgetView, insertDecision, lockedRequestWithContext, watchWrites, type WriteView } from "./rows";
import { conflict, forbidden, invalid, notFound } from "../errors";
import { approvalRefusal, approvalRefusalOf, sameParty, stageSatisfied, type Principal, type StageSnapshot } from "../policy/evaluate";
import { requestStages } from "../policy/stages";
import { partiesFrom, partiesOf } from "../identity/parties";
import { enqueueNotifications } from "../notifications/outbox";
import { enqueueSlack } from "../integrations/slack/outbox";
import { asksOnCall, onCallApprover, type OnCallApprover } from "./on-call";
import { Moves, queueFollowUps, transition } from "./transition";
import { approvalLatency } from "../observability/metrics";
import { REQUEST_ONLY, approvalStateOf, directoryRefusal, inTransaction } from "./lifecycle";
import { activate } from "./execution";

/** Approvers' decisions: approve or reject under the request's row lock, stage by stage. */

export interface DecisionInput {
  requestId: string;
  decision: Decision;
  comment: string;
}

/** Where a decision was made, when not in the portal or the API: recorded with each event it causes. */
export interface DecisionChannel {
  via: "slack";
  slackUserId: string;
  slackTeamId: string;
}

/**
 * Records an approval or a rejection. The request row is locked first, so of any number
 * of approvers acting at once exactly one completes the approval and executes it; the
 * others find it no longer pending. With `view`, the request's view as the decision leaves
 * it is kept there when its last write returned it (lib/approvals/rows.ts, WriteView).
 */
export async function decide(person: Principal, input: DecisionInput, channel?: DecisionChannel, view?: WriteView): Promise<AccessRequest> {
  const comment = input.comment.trim();
  if (input.decision === "reject" && comment.length === 0) {
    throw invalid("Say why you reject this request.", { comment: "Say why you reject this request." });
  }
  if (person.requestOnly) throw forbidden(REQUEST_ONLY);
  let outcome: Decided | null = null;
  let onCall: StageAnswer | null = null;
  // The schedule is asked outside the transaction (no outside call under a row lock), then the decision is made again with its answer, for the stage it was asked for.
  for (let attempt = 0; !outcome; attempt++) {
    try {
      outcome = await decideOnce(person, { ...input, comment }, channel, onCall, view);
    } catch (error) {
      if (!(error instanceof AskOnCall)) throw error;
      if (attempt >= 2) throw conflict("This request moved on to another stage while your on-call shift was being checked; look at it again.");
      onCall = { stage: error.index, answer: await onCallApprover(person, error.stage) };
    }
  }
  const { decided, noLongerEntitled } = outcome;
  // Counted once committed, by the instance that recorded the decision; a request still waiting for another stage is not decided.
  if (decided.decidedAt) approvalLatency.observe({ decision: input.decision }, Math.max(0, (decided.decidedAt.getTime() - decided.createdAt.getTime()) / 1000));
  if (noLongerEntitled) throw conflict(`The requester may no longer have this (${noLongerEntitled}), so the request was cancelled instead of approved.`);
  return decided;
}

interface Decided {
  decided: AccessRequest;
  noLongerEntitled: string | null;
}

/** The on-call schedule's answer for this person, and the stage (its index) it was asked for. */
interface StageAnswer {
  stage: number;
  answer: OnCallApprover;
}

/** The stage waiting for a decision has an on-call schedule that could empower this person: its answer is needed first. */
class AskOnCall extends Error {
  constructor(
    readonly index: number,
    readonly stage: StageSnapshot,
  ) {
    super("the on-call schedule must be asked first");
  }
}

/**
 * One attempt at the decision (its comment already trimmed). It throws AskOnCall, having written nothing, when the waiting
 * stage has a schedule that could change what this person may do and `onCall` holds no answer
 * for that stage (none yet, or one for a stage the request has since left); most stages have
 * no schedule, and are decided with no read before the transaction. An answer is used only for
 * the stage it was asked for: the decision names the shift only when it was about that stage.
 */
async function decideOnce(
  person: Principal,
  input: DecisionInput,
  channel: DecisionChannel | undefined,
  onCall: StageAnswer | null,
  view: WriteView | undefined,
): Promise<Decided> {
  const { comment } = input;
  let noLongerEntitled: string | null = null;
  const decided = await inTransaction(async (tx) => {
    if (view) watchWrites(tx, Object.assign(view, { requestId: input.requestId }));
    const { request, owners } = await lockedRequest(tx, input.requestId, person.id);
    const { status } = request;
    const waiting = requestStages(request)[request.currentStage];
    const asks = status === "pending" && asksOnCall(person, waiting);
    if (asks && onCall?.stage !== request.currentStage) throw new AskOnCall(request.currentStage, waiting);
    const answer = asks ? onCall!.answer : null;
    const who = answer?.who ?? person;
    const unknownNote = answer?.unknown ? ` (Whether you are on call could not be checked: ${answer.unknown}.)` : "";
    const audit = answer?.audit ?? {};
    rememberRequest(request);
    const parties = partiesFrom([request.requesterId, who.id, ...request.decisions.map((d) => d.approverId)], owners);
    const state = approvalStateOf(request, request.decisions, parties);
    if (sameParty(parties, request.requesterId, who.id) || !who.roles.includes("approver")) throw forbidden(approvalRefusal(state, who)!);
    if (status !== "pending") throw conflict(`This request is already ${status}; there is nothing left to decide.`);
    const refusal = approvalRefusalOf(state, who);
    if (refusal) throw refusal.code === "decided" ? conflict(refusal.message) : forbidden(`${refusal.message}${unknownNote}`);
    if (input.decision === "approve") {
      // The requester may have been deactivated or demoted while the request waited (a directory change racing this approval): it is cancelled, not approved.
      noLongerEntitled = await directoryRefusal(tx, request, request.requester);
      if (noLongerEntitled) {
        return transition(tx, request, "cancelled", {
          actor: SYSTEM,
          action: "request.cancelled",
          patch: { endedAt: new Date() },
          data: { reason: noLongerEntitled, approver: who.email },
        });
      }
    }
    const stageIndex = request.currentStage;
    const stage = state.stages[stageIndex]!;
    await insertDecision(tx, { requestId: request.id, approverId: who.id, stage: stageIndex, approverGroups: who.groups, decision: input.decision, comment });
    const actor = actorOf(who);
    const via = channel ? { ...channel } : {};
    if (input.decision === "reject") {
      const rejected = await transition(tx, request, "rejected", {
        actor,
        action: "request.rejected",
        data: { comment, stage: stage.name, ...via, ...audit },
        patch: { decidedAt: new Date(), endedAt: new Date() },
      });
      await enqueueNotifications(tx, "rejected", rejected, request.requester.email);
      return rejected;
    }
    const approvals = [...state.decisions, { approverId: who.id, stage: stageIndex, approverGroups: who.groups, decision: "approve" as const }].filter(
      (d) => d.stage === stageIndex && d.decision === "approve",
    );
    if (!stageSatisfied(stage, approvals, parties, request.requesterId)) {
      await recordEvent(tx, {
        actor,
        action: "request.approval_recorded",
        requestId: request.id,
        fromStatus: "pending",
        toStatus: "pending",
        data: { comment, stage: stage.name, approvals: approvals.length, required: stage.required, ...via, ...audit },
      });
      const recorded = await tx.accessRequest.findUniqueOrThrow({ where: { id: request.id } });
      await enqueueSlack(tx, "progress", recorded);
      await queueFollowUps(tx, recorded);
      return recorded;
    }
    const next = state.stages[stageIndex + 1];
    if (next) {
      await recordEvent(tx, {
        actor,
        action: "request.stage_passed",
        requestId: request.id,
        fromStatus: "pending",
        toStatus: "pending",
        data: { comment, stage: stage.name, next: next.name, ...via, ...audit },
      });
      // Written by Prisma's client: a view of the request asked for at its writes is read after the commit instead.
      forgetView(tx, request.id);
      const advanced = await tx.accessRequest.update({ where: { id: request.id }, data: { currentStage: stageIndex + 1, currentStageGroups: next.groups } });
      await enqueueNotifications(tx, "pending", advanced, request.requester.email);
      await queueFollowUps(tx, advanced);
      return advanced;
    }
    const moves = new Moves(request);
    await moves.to(tx, "approved", {
      actor,
      action: "request.approved",
      data: { comment, stage: stage.name, ...via, ...audit },
      patch: { decidedAt: new Date() },
    });
    const activated = await activate(tx, moves, request, request.requester, actor);
    await enqueueNotifications(tx, "approved", activated, request.requester.email);
    return activated;
  });
  return { decided, noLongerEntitled };
}

/** A request under its row lock, with what deciding on it reads (lib/approvals/rows.ts, lockedRequestWithContext): two statements, one round trip. */
async function lockedRequest(tx: Tx, id: string, deciderId: string) {
  const locked = await lockedRequestWithContext(tx, id, deciderId);
  if (!locked) throw notFound("Request");
  const { request, requester, decisions, owners } = locked;
  return { request: { ...request, requester, decisions }, owners };
}

/**
 * Why this person may not decide this request now, or null: the refusals decide() makes,
 * read without deciding, for a client that asks for more before deciding (Slack's reject modal).
 */
export async function decisionRefusal(who: Principal, requestId: string): Promise<string | null> {
  if (who.requestOnly) return REQUEST_ONLY;
  const request = await db.accessRequest.findUnique({ where: { id: requestId }, include: { decisions: true } });
  if (!request) return "This request no longer exists.";
  const parties = await partiesOf(db, [request.requesterId, who.id, ...request.decisions.map((d) => d.approverId)]);
  const state = approvalStateOf(request, request.decisions, parties);
  if (sameParty(parties, request.requesterId, who.id) || !who.roles.includes("approver")) return approvalRefusal(state, who);
  if (request.status !== "pending") return `This request is already ${request.status}; there is nothing left to decide.`;
  return approvalRefusal(state, who);
}
