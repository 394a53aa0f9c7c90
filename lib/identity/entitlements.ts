import type { Policy } from "../policy/schema";
import { breakGlassRefusal, evaluateRequest, rolesForGroups, type Principal } from "../policy/evaluate";

/**
 * Would the policy still give this person what a request grants or asks for, with the
 * groups the directory says they have now? Pure, so a directory change, an offboarding
 * preview and the tests all decide the same way. Durations are not rechecked: a grant
 * approved within the limits of its day stays within them.
 */
export interface Holder {
  id: string;
  email: string;
  groups: readonly string[];
  active: boolean;
}

export interface HeldRequest {
  workflowId: string;
  targetId: string;
  input: unknown;
  breakGlass: boolean;
}

export function principalOf(holder: Holder, policy: Policy): Principal {
  const groups = [...holder.groups];
  return { id: holder.id, email: holder.email, groups, roles: rolesForGroups(policy, groups) };
}

/** Null when the person may still hold it; otherwise why not, for the audit trail. */
export function entitlementRefusal(policy: Policy, holder: Holder, request: HeldRequest): string | null {
  if (!holder.active) return "the person was deactivated";
  const who = principalOf(holder, policy);
  const role = typeof (request.input as { role?: unknown } | null)?.role === "string" ? (request.input as { role: string }).role : undefined;
  const verdict = evaluateRequest(policy, { workflowId: request.workflowId, targetId: request.targetId, who, accessRole: role });
  if (verdict.ok) return null;
  // A break-glass grant is also held by its break-glass groups, not only by the requesters.
  if (request.breakGlass) {
    const rule = policy.workflows[request.workflowId]?.targets[request.targetId];
    if (rule && who.roles.includes("requester") && breakGlassRefusal(rule, who, 0) === null) return null;
  }
  return verdict.message;
}

/** Groups that left and groups that arrived, each sorted. */
export function groupDelta(before: readonly string[], after: readonly string[]): { added: string[]; removed: string[] } {
  return { added: after.filter((g) => !before.includes(g)).sort(), removed: before.filter((g) => !after.includes(g)).sort() };
}
