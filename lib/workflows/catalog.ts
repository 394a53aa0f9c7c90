import "server-only";
import { policy } from "../policy/current";
import { requestableTargets, type Principal } from "../policy/evaluate";
import { unavailability, unavailableMessage } from "./availability";
import { describeFields } from "./fields";
import { listWorkflows } from "./registry";

/** Whether the target can be requested now and, if not, why (naming the variables to set for admins). */
export function availabilityFor(
  workflowId: string,
  target: Parameters<typeof unavailability>[1],
  who: Principal,
): { available: boolean; unavailableReason: string | null } {
  const u = unavailability(workflowId, target);
  return { available: u === null, unavailableReason: u && unavailableMessage(u, who.roles.includes("admin")) };
}

/** The workflows and targets this person (or token) may request, with their fields and limits: the catalog and GET /api/v1/workflows. */
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
      fields: describeFields(w.inputSchema).map(({ name, label, help, kind, required, options, optionsFrom }) => ({
        name,
        label,
        help,
        kind,
        required,
        options,
        optionsFrom,
      })),
      targets: requestableTargets(p, w.id, who).map(({ targetId, target, rule }) => ({
        id: targetId,
        title: target.title,
        roles: rule.roles ?? [],
        minDurationMinutes: Math.ceil(rule.minDuration / 60),
        maxDurationMinutes: rule.maxDuration === undefined ? null : Math.floor(rule.maxDuration / 60),
        stages: rule.stages.map((st) => ({ name: st.name, groups: st.groups, required: st.required })),
        ...availabilityFor(w.id, target, who),
      })),
    }))
    .filter((w) => w.targets.length > 0);
}

/** Every workflow target of the policy that cannot be carried out here, for the admins' Integrations page. */
export function unavailableWorkflows() {
  const p = policy();
  return listWorkflows().flatMap((w) =>
    Object.keys(p.workflows[w.id]?.targets ?? {}).flatMap((targetId) => {
      const target = p.targets[targetId];
      const u = target && unavailability(w.id, target);
      return u ? [{ workflowId: w.id, workflowTitle: w.title, targetId, targetTitle: target.title, ...u }] : [];
    }),
  );
}
