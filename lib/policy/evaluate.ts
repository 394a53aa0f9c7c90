import { formatDuration } from "./duration";
import { ROLES, type Policy, type Role, type TargetDefinition, type WorkflowTargetRule } from "./schema";

/** Who is acting, as far as the policy is concerned. */
export interface Principal {
  id: string;
  email: string;
  groups: string[];
  roles: Role[];
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

export type RequestDecision =
  | { ok: true; rule: WorkflowTargetRule; target: TargetDefinition }
  | { ok: false; field?: string; message: string };

/** May this person make this request? Checks role, group, target, workflow role and duration bounds. */
export function evaluateRequest(
  policy: Policy,
  input: { workflowId: string; targetId: string; who: Principal; durationSeconds: number; accessRole?: string },
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
  if (durationSeconds < rule.minDuration || durationSeconds > rule.maxDuration) {
    return {
      ok: false,
      field: "durationMinutes",
      message: `Duration must be between ${formatDuration(rule.minDuration)} and ${formatDuration(rule.maxDuration)} for ${target.title}.`,
    };
  }
  return { ok: true, rule, target };
}

/** The approval requirement captured on a request when it is made. */
export interface ApprovalRequirement {
  approverGroups: string[];
  approvalsNeeded: number;
}

/**
 * Why this person may not approve a request, or null when they may.
 * The requester never approves their own request; an approver needs the approver role
 * and membership in one of the request's approver groups.
 */
export function approvalRefusal(request: ApprovalRequirement & { requesterId: string }, who: Principal): string | null {
  if (request.requesterId === who.id) return "You cannot approve your own request.";
  if (!who.roles.includes("approver")) return "Your role does not allow approving requests.";
  if (!inAny(who.groups, request.approverGroups)) {
    return `Only members of ${request.approverGroups.join(", ")} may approve this request.`;
  }
  return null;
}
