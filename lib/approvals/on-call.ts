import type { OnCallShift } from "../integrations/oncall/client";
import { onCallNow, shiftRecord } from "../integrations/oncall/lookup";
import { onCallGroup, type OnCallSchedule } from "../integrations/oncall/schema";
import { matchingAutoApproval, type Principal, type StageSnapshot } from "../policy/evaluate";
import type { AutoApproveRule, WorkflowTargetRule } from "../policy/schema";

/**
 * The on-call half of the approval rules: the I/O that the pure rules (matchingAutoApproval,
 * approvalRefusal) cannot do. Whoever the on-call service says is on call for a schedule
 * now joins that schedule's pseudo-group (onCallGroup) for this one decision; the pure rules
 * then decide as for any group. An unanswered lookup joins nobody (fail closed).
 */

export interface UnknownOnCall {
  provider: string;
  schedule: string;
  reason: string;
}

export interface AutoApprovalOutcome {
  auto?: AutoApproveRule;
  /** The shift that satisfied the matching rule's onCall condition. */
  shift?: OnCallShift;
  /** Lookups that failed, when no rule matched: recorded so a person sees why the request waits. */
  unknown: UnknownOnCall[];
}

/** The first auto-approval rule this request meets, asking the on-call services only for rules whose other conditions hold. */
export async function autoApprovalOf(
  rule: WorkflowTargetRule,
  input: { who: Principal; durationSeconds?: number; accessRole?: string },
  now = new Date(),
): Promise<AutoApprovalOutcome> {
  const schedules = new Map<string, OnCallSchedule>();
  for (const auto of rule.autoApprove) {
    if (auto.onCall && matchingAutoApproval({ ...rule, autoApprove: [{ ...auto, onCall: undefined }] }, input))
      schedules.set(onCallGroup(auto.onCall), auto.onCall);
  }
  const answers = new Map(await Promise.all([...schedules].map(async ([key, schedule]) => [key, await onCallNow(schedule, input.who.email, now)] as const)));
  const onCall = new Set([...answers].filter(([, a]) => a.state === "on-call").map(([key]) => key));
  const auto = matchingAutoApproval(rule, { ...input, onCall });
  const answer = auto?.onCall ? answers.get(onCallGroup(auto.onCall)) : undefined;
  const unknown = auto
    ? []
    : [...answers].flatMap(([key, a]) =>
        a.state === "unknown" ? [{ provider: schedules.get(key)!.provider, schedule: schedules.get(key)!.schedule, reason: a.reason }] : [],
      );
  return { auto, shift: answer?.state === "on-call" ? answer.shift : undefined, unknown };
}

export interface OnCallApprover {
  who: Principal;
  /** The audit data naming the shift, when being on call is what makes this person eligible. */
  audit: { onCall?: Record<string, string | null> };
  /** Why the on-call service could not say, when it was asked and did not answer. */
  unknown?: string;
}

/** Whether the on-call schedule could change what this person may do at this stage: it has one, and the person is an approver outside its groups. */
export function asksOnCall(who: Principal, stage: StageSnapshot | undefined): stage is StageSnapshot & { onCall: NonNullable<StageSnapshot["onCall"]> } {
  return Boolean(stage?.onCall) && who.roles.includes("approver") && !stage!.groups.some((g) => who.groups.includes(g));
}

/**
 * An approver outside a stage's groups who is on call for the stage's schedule may decide
 * on it: they are returned with the stage's on-call pseudo-group added. Everyone else is
 * returned as they are, without a lookup.
 */
export async function onCallApprover(who: Principal, stage: StageSnapshot | undefined, now = new Date()): Promise<OnCallApprover> {
  const unchanged = { who, audit: {} };
  if (!asksOnCall(who, stage)) return unchanged;
  const answer = await onCallNow(stage.onCall, who.email, now);
  if (answer.state === "unknown") return { ...unchanged, unknown: answer.reason };
  if (answer.state === "not-on-call") return unchanged;
  return { who: { ...who, groups: [...who.groups, onCallGroup(stage.onCall)] }, audit: { onCall: shiftRecord(answer.shift) } };
}
