import { formatDuration } from "./duration";
import { onCallGroup, type OnCallSchedule } from "../integrations/oncall/schema";
import { ROLES, type AutoApproveRule, type Policy, type Role, type TargetDefinition, type WorkflowTargetRule } from "./schema";

/** Who is acting, as far as the policy is concerned. */
export interface Principal {
  id: string;
  email: string;
  groups: string[];
  roles: Role[];
  /** Set when an API token acts: which token, and what it may do. Absent for a person in the portal. */
  via?: { kind: "personal_token" | "service_token"; tokenId: string; scopes: readonly string[] };
  /** A service identity an admin marked "request only": it may never approve or reject. */
  requestOnly?: boolean;
}

/** Portal roles for a set of IdP groups; unknown groups grant nothing. */
export function rolesForGroups(policy: Policy, groups: readonly string[]): Role[] {
  const roles = new Set<Role>();
  for (const group of groups) for (const role of policy.roles[group] ?? []) roles.add(role);
  return ROLES.filter((role) => roles.has(role));
}

export interface RequestableTarget {
  targetId: string;
  target: TargetDefinition;
  rule: WorkflowTargetRule;
}

function inAny(groups: readonly string[], allowed: readonly string[]): boolean {
  return groups.some((g) => allowed.includes(g));
}

/** Targets of a workflow that this person may request, in policy order. */
export function requestableTargets(policy: Policy, workflowId: string, who: Principal): RequestableTarget[] {
  if (!who.roles.includes("requester")) return [];
  const workflow = policy.workflows[workflowId];
  if (!workflow) return [];
  return Object.entries(workflow.targets)
    .filter(([, rule]) => inAny(who.groups, rule.requesters))
    .map(([targetId, rule]) => ({ targetId, target: policy.targets[targetId]!, rule }));
}

export type RequestDecision = { ok: true; rule: WorkflowTargetRule; target: TargetDefinition } | { ok: false; field?: string; message: string };

/** May this person make this request? Checks role, group, target, workflow role and duration bounds. */
export function evaluateRequest(
  policy: Policy,
  input: { workflowId: string; targetId: string; who: Principal; durationSeconds?: number; accessRole?: string },
): RequestDecision {
  const { workflowId, targetId, who, durationSeconds, accessRole } = input;
  if (!who.roles.includes("requester")) {
    return { ok: false, message: "Your groups do not allow you to request access." };
  }
  const rule = policy.workflows[workflowId]?.targets[targetId];
  const target = policy.targets[targetId];
  if (!rule || !target) return { ok: false, field: "targetId", message: `"${targetId}" is not a target of this workflow.` };
  if (!inAny(who.groups, rule.requesters)) {
    return { ok: false, field: "targetId", message: `Only members of ${rule.requesters.join(", ")} may request ${target.title}.` };
  }
  if (rule.roles && (accessRole === undefined || !rule.roles.includes(accessRole))) {
    return { ok: false, field: "role", message: `Role must be one of: ${rule.roles.join(", ")}.` };
  }
  if (durationSeconds !== undefined) {
    if (rule.maxDuration === undefined)
      return { ok: false, message: `The policy sets no maxDuration for ${target.title}, so no lasting access can be granted there.` };
    if (durationSeconds < rule.minDuration || durationSeconds > rule.maxDuration) {
      return {
        ok: false,
        field: "durationMinutes",
        message: `Duration must be between ${formatDuration(rule.minDuration)} and ${formatDuration(rule.maxDuration)} for ${target.title}.`,
      };
    }
  }
  return { ok: true, rule, target };
}

/** A stage as captured on a request when it is made. */
export interface StageSnapshot {
  name: string;
  /** The stage's groups; with an on-call schedule, also its pseudo-group (onCallGroup), which whoever is on call joins while deciding. */
  groups: string[];
  required: number;
  oneFromEachGroup: boolean;
  onCall?: OnCallSchedule;
}

export interface DecisionSnapshot {
  approverId: string;
  stage: number;
  approverGroups: string[];
  decision: "approve" | "reject";
}

/**
 * For each identity: the ids of its party, itself first. A person's party is the person; a
 * service identity's is the identity and its owners. Two identities whose parties share an
 * id are one party (a person and the identity they own, or two identities with an owner in
 * common). An identity missing from the map is a party of its own.
 */
export type Parties = Readonly<Record<string, readonly string[]>>;

/** Whether two identities count as one party for separation of duties. */
export function sameParty(parties: Parties, a: string, b: string): boolean {
  if (a === b) return true;
  const of = (id: string) => parties[id] ?? [id];
  const theirs = of(b);
  return of(a).some((id) => theirs.includes(id));
}

/** What the approval rules need to know about a request. */
export interface ApprovalState {
  requesterId: string;
  stages: StageSnapshot[];
  currentStage: number;
  decisions: DecisionSnapshot[];
  /** The parties of the requester and of everyone who decided or is deciding. */
  parties: Parties;
}

/**
 * Approvals merged by party: approvals by one party count once, with the groups of all its
 * members (it still covers one group of a "one from each group" stage). Approvals by the
 * requester's party never count. Merging is transitive, so it can only under-count.
 */
function approvingParties(approvals: readonly DecisionSnapshot[], parties: Parties, requesterId: string | undefined): string[][] {
  const merged: { ids: string[]; groups: Set<string> }[] = [];
  for (const a of approvals) {
    if (requesterId !== undefined && sameParty(parties, a.approverId, requesterId)) continue;
    const joined = merged.filter((m) => m.ids.some((id) => sameParty(parties, id, a.approverId)));
    const into = { ids: [a.approverId, ...joined.flatMap((m) => m.ids)], groups: new Set([...a.approverGroups, ...joined.flatMap((m) => [...m.groups])]) };
    for (const m of joined) merged.splice(merged.indexOf(m), 1);
    merged.push(into);
  }
  return merged.map((m) => [...m.groups]);
}

/** Largest number of groups covered by distinct approvers (bipartite matching, small sizes). */
export function groupsCovered(groups: readonly string[], approverGroups: readonly (readonly string[])[]): number {
  const owner = new Map<string, number>();
  const tryAssign = (approver: number, seen: Set<string>): boolean => {
    for (const g of groups) {
      if (!approverGroups[approver]!.includes(g) || seen.has(g)) continue;
      seen.add(g);
      const current = owner.get(g);
      if (current === undefined || tryAssign(current, seen)) {
        owner.set(g, approver);
        return true;
      }
    }
    return false;
  };
  let covered = 0;
  for (let i = 0; i < approverGroups.length; i++) if (tryAssign(i, new Set())) covered += 1;
  return covered;
}

function approvalsIn(state: ApprovalState, stage: number): DecisionSnapshot[] {
  return state.decisions.filter((d) => d.stage === stage && d.decision === "approve");
}

/**
 * Is this stage passed by these approvals? They count by party, not by identity: a service
 * identity and its owners count once between them, and never when the requester is one of
 * them (`parties` and `requesterId`; without them, each identity is its own party).
 */
export function stageSatisfied(stage: StageSnapshot, approvals: readonly DecisionSnapshot[], parties: Parties = {}, requesterId?: string): boolean {
  const counted = approvingParties(approvals, parties, requesterId);
  if (stage.oneFromEachGroup) return groupsCovered(stage.groups, counted) === stage.groups.length;
  return counted.length >= stage.required;
}

/** Groups of a "one from each group" stage still missing an approver. */
export function openGroups(stage: StageSnapshot, approvals: readonly DecisionSnapshot[], parties: Parties = {}, requesterId?: string): string[] {
  if (!stage.oneFromEachGroup) return stage.groups;
  const counted = approvingParties(approvals, parties, requesterId);
  const base = groupsCovered(stage.groups, counted);
  return stage.groups.filter((g) => groupsCovered(stage.groups, [...counted, [g]]) > base);
}

/** Why someone may not approve: `decided` when they already decided (a conflict with what happened), `refused` otherwise. */
export interface ApprovalRefusal {
  code: "decided" | "refused";
  message: string;
}

export const SAME_PARTY = "You cannot approve this request: a service identity and its owners count as one party, and the requester is in yours.";
export const PARTY_DECIDED = "A service identity and its owners decide once between them, and your party has already decided on this request.";

/**
 * Why this person may not approve the request's current stage, or null when they may.
 * The requester never approves their own request (and so never a request that grants
 * them something: the requester is the grantee), nor does anyone of the requester's
 * party; one party decides at most once per request, and the approver must be in the
 * current stage's groups.
 */
export function approvalRefusalOf(state: ApprovalState, who: Principal): ApprovalRefusal | null {
  const refused = (message: string): ApprovalRefusal => ({ code: "refused", message });
  if (state.requesterId === who.id) return refused("You cannot approve your own request.");
  if (sameParty(state.parties, state.requesterId, who.id)) return refused(SAME_PARTY);
  if (!who.roles.includes("approver")) return refused("Your role does not allow approving requests.");
  if (state.decisions.some((d) => d.approverId === who.id)) return { code: "decided", message: "You have already decided on this request." };
  if (state.decisions.some((d) => sameParty(state.parties, d.approverId, who.id))) return refused(PARTY_DECIDED);
  const stage = state.stages[state.currentStage];
  if (!stage) return refused("This request has no stage waiting for approval.");
  if (!inAny(who.groups, stage.groups)) return refused(`Only members of ${stage.groups.join(", ")} may approve the stage "${stage.name}".`);
  const open = openGroups(stage, approvalsIn(state, state.currentStage), state.parties, state.requesterId);
  if (!inAny(who.groups, open)) return refused(`The stage "${stage.name}" still needs an approver from ${open.join(", ")}.`);
  return null;
}

/** approvalRefusalOf's message alone, for callers that only show it. */
export function approvalRefusal(state: ApprovalState, who: Principal): string | null {
  return approvalRefusalOf(state, who)?.message ?? null;
}

/** The first auto-approval rule this request meets, if any. */
export function matchingAutoApproval(
  rule: WorkflowTargetRule,
  input: { who: Principal; durationSeconds?: number; accessRole?: string; onCall?: ReadonlySet<string> },
): AutoApproveRule | undefined {
  return rule.autoApprove.find(
    (auto) =>
      (!auto.roles || (input.accessRole !== undefined && auto.roles.includes(input.accessRole))) &&
      (auto.maxDuration === undefined || (input.durationSeconds ?? 0) <= auto.maxDuration) &&
      (!auto.requesterGroups || inAny(input.who.groups, auto.requesterGroups)) &&
      // onCall: the on-call groups (onCallGroup) the requester was found on call for; an unknown answer is not in it.
      (!auto.onCall || (input.onCall?.has(onCallGroup(auto.onCall)) ?? false)),
  );
}

/** Why this person may not open a break-glass grant here, or null when they may. */
export function breakGlassRefusal(rule: WorkflowTargetRule, who: Principal, durationSeconds = 0): string | null {
  if (!rule.breakGlass) return "Break-glass access is not enabled for this target.";
  if (!inAny(who.groups, rule.breakGlass.groups)) return `Only members of ${rule.breakGlass.groups.join(", ")} may use break-glass access here.`;
  if (durationSeconds > rule.breakGlass.maxDuration) return `Break-glass access lasts at most ${formatDuration(rule.breakGlass.maxDuration)} here.`;
  return null;
}

export function stagesOf(rule: WorkflowTargetRule): StageSnapshot[] {
  return rule.stages.map((s) => ({
    name: s.name,
    groups: s.onCall ? [...s.groups, onCallGroup(s.onCall)] : [...s.groups],
    required: s.required,
    oneFromEachGroup: s.oneFromEachGroup,
    ...(s.onCall ? { onCall: { ...s.onCall } } : {}),
  }));
}
