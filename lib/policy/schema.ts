import { z } from "zod";
import { parseDuration } from "./duration";

export const ROLES = ["requester", "approver", "auditor", "admin"] as const;
export type Role = (typeof ROLES)[number];

const id = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { message: "must be lower-case letters, digits and dashes" });
const group = z.string().min(1);
const duration = z.string().transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === undefined) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a duration (use e.g. 30m, 8h, 1d)` });
    return z.NEVER;
  }
  return seconds;
});

export const targetSchema = z.object({
  title: z.string().min(1),
  description: z.string().optional(),
  service: z.string().min(1),
  environment: z.string().min(1),
  owners: z.array(group).default([]),
});

export const approvalSchema = z.object({
  groups: z.array(group).min(1, { message: "name at least one approver group" }),
  required: z.number().int().min(1).default(1),
});

export const workflowTargetRuleSchema = z.object({
  roles: z.array(z.string().min(1)).min(1).optional(),
  requesters: z.array(group).min(1, { message: "name at least one group that may request" }),
  approval: approvalSchema,
  minDuration: duration.prefault("5m"),
  maxDuration: duration,
});

export const workflowPolicySchema = z.object({
  targets: z.record(id, workflowTargetRuleSchema),
});

export const policySchema = z
  .object({
    version: z.literal(1),
    roles: z.record(group, z.array(z.enum(ROLES)).min(1)),
    targets: z.record(id, targetSchema),
    workflows: z.record(id, workflowPolicySchema),
  })
  .superRefine((policy, ctx) => {
    for (const [workflowId, workflow] of Object.entries(policy.workflows)) {
      for (const [targetId, rule] of Object.entries(workflow.targets)) {
        const at = ["workflows", workflowId, "targets", targetId];
        if (!policy.targets[targetId]) {
          ctx.addIssue({ code: "custom", path: at, message: `unknown target "${targetId}" (declare it under targets)` });
        }
        if (rule.minDuration > rule.maxDuration) {
          ctx.addIssue({ code: "custom", path: [...at, "minDuration"], message: "is longer than maxDuration" });
        }
        if (rule.approval.required > 1 && rule.approval.groups.length === 0) {
          ctx.addIssue({ code: "custom", path: [...at, "approval"], message: "needs approver groups" });
        }
      }
    }
  });

export type Policy = z.infer<typeof policySchema>;
export type TargetDefinition = z.infer<typeof targetSchema>;
export type WorkflowTargetRule = z.infer<typeof workflowTargetRuleSchema>;
