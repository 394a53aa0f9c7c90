import "server-only";
import type { z } from "zod";
import { policy } from "../policy/current";
import { requestableTargets, type Principal } from "../policy/evaluate";
import { describeFields } from "./fields";
import { listWorkflows } from "./registry";

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

