import type { TargetDefinition } from "../policy/schema";
import { workflowDefinition } from "./definitions";
import type { Environment, Unavailable } from "./types";

/**
 * Whether a workflow can be carried out on a target here: a workflow that changes an
 * outside system needs that system in the policy's target and its connection settings in
 * the environment. Checked before a request is made (catalog, form, server, `policy:check`),
 * so nobody approves what could only fail afterwards. Each workflow says it in its
 * definition (`unavailable`); the others are always available. Pure: the environment is passed in.
 */
export type { Unavailable };

export function unavailability(workflowId: string, target: TargetDefinition, env: Environment = process.env): Unavailable | null {
  return workflowDefinition(workflowId)?.unavailable?.(target, env) ?? null;
}

/** The sentence shown to a person, naming variables only for admins. */
export function unavailableMessage(u: Unavailable, forAdmin: boolean): string {
  if (forAdmin && u.missing.length) return `${u.reason} Set ${u.missing.join(", ")} and restart the portal.`;
  if (forAdmin) return `${u.reason} Add it to the policy.`;
  return `${u.reason} It cannot be requested until an admin sets it up.`;
}
