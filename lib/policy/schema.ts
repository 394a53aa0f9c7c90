import { z } from "zod";
import { configNouns } from "../config/nouns";
import { onCallScheduleSchema } from "../integrations/oncall/schema";
import { registryVersion, targetBlocks } from "../integrations/registry";
import { envName, policyDuration as duration, policyGroup as group, policyId as id } from "./fields";

/**
 * The policy's shape. Every object is strict: a mistyped key (`pendingTimout`, `breakglass`)
 * is an error, never a silently ignored line, because an ignored key in this file can widen
 * access. Each object is registered under the noun its errors use, and each key carries the
 * description that policy/latchkey.schema.json gives editors. What a target says about an
 * outside system (its database, Airflow DAG, HAProxy backend, Slack channels, ticket rule)
 * is each registered integration's block (lib/integrations/registry.ts); an on-call
 * schedule is a condition of approval stages and auto-approve rules.
 */
export const ROLES = ["requester", "approver", "auditor", "admin"] as const;
export type Role = (typeof ROLES)[number];

const targetOf = <Blocks extends z.ZodRawShape>(blocks: Blocks) =>
  z
    .strictObject({
      title: z.string().min(1).describe("Name shown to people in the portal."),
      description: z.string().optional().describe("Longer text shown with the target."),
      service: z.string().min(1).describe("The service this target belongs to."),
      environment: z.string().min(1).describe("The environment, e.g. staging or production."),
      owners: z.array(group).default([]).describe("IdP groups answerable for this target."),
      forwardAuth: z
        .array(
          z
            .strictObject({
              host: z
                .string()
                .regex(/^[a-z0-9.-]+$/, { message: "must be a lower-case host name, without scheme or port" })
                .describe("Host name, lower-case, without scheme or port."),
              pathPrefix: z.string().regex(/^\//, { message: "must start with /" }).default("/").describe("Paths under this prefix are opened."),
            })
            .register(configNouns, { noun: "a forwardAuth entry" }),
        )
        .optional()
        .describe("For sites behind a proxy that asks /api/forward-auth: the hosts and paths an active grant on this target opens."),
      ...blocks,
    })
    .register(configNouns, { noun: "a target" });

/** One approval stage: N distinct approvers from these groups, or one from each group. */
export const stageSchema = z
  .strictObject({
    name: z.string().min(1).describe("Name of the stage, shown to approvers and in the audit trail."),
    groups: z
      .array(group)
      .min(1, { message: "name at least one approver group" })
      .describe("IdP groups whose members may approve this stage (they need the approver role)."),
    required: z.number().int().min(1).default(1).describe("How many distinct approvers this stage needs."),
    oneFromEachGroup: z.boolean().default(false).describe("When true, one approver from each of the groups (required is then the number of groups)."),
    onCall: onCallScheduleSchema
      .optional()
      .describe("Whoever is on call for this schedule when deciding may approve this stage too (they need the approver role)."),
  })
  .refine((s) => !(s.onCall && s.oneFromEachGroup), { message: "an on-call schedule cannot be combined with oneFromEachGroup", path: ["onCall"] })
  .register(configNouns, { noun: "an approval stage" })
  .transform((stage) => (stage.oneFromEachGroup ? { ...stage, required: stage.groups.length } : stage));

/** A request matching every condition given is approved without a person, naming the rule. */
export const autoApproveSchema = z
  .strictObject({
    name: id.describe("Name of the rule, recorded in the audit trail of each request it approves."),
    roles: z.array(z.string().min(1)).min(1).optional().describe("Condition: the requested access role is one of these."),
    maxDuration: duration.optional().describe("Condition: the requested duration is at most this long (e.g. 1h)."),
    requesterGroups: z.array(group).min(1).optional().describe("Condition: the requester is in one of these groups."),
    onCall: onCallScheduleSchema
      .optional()
      .describe("Condition: the requester is on call for this schedule when asking. When the on-call service cannot be reached, the rule does not apply."),
  })
  .refine((r) => r.roles || r.maxDuration !== undefined || r.requesterGroups || r.onCall, {
    message: "give at least one condition (roles, maxDuration, requesterGroups, onCall)",
  })
  .register(configNouns, { noun: "an auto-approve rule" });

/** Who may self-activate an emergency grant, and for how long at most. */
export const breakGlassSchema = z
  .strictObject({
    groups: z.array(group).min(1).describe("IdP groups whose members may open an emergency grant themselves."),
    maxDuration: duration.describe("Longest emergency grant (e.g. 30m)."),
  })
  .register(configNouns, { noun: "a breakGlass block" });

export const NOTIFICATION_EVENTS = ["pending", "approved", "rejected", "expiring", "expired", "break-glass"] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

/** Where notifications go. URLs and secrets come from the environment variables named here. */
export const notificationChannelSchema = z
  .strictObject({
    name: id.describe("Name of the channel."),
    kind: z.enum(["slack", "webhook"]).describe("slack: a Slack incoming webhook; webhook: a signed JSON POST."),
    urlEnv: envName.describe("Environment variable holding the URL; the channel is off while it is unset."),
    secretEnv: envName.optional().describe('Environment variable holding the HMAC-SHA256 signing key (required for "webhook" channels).'),
    events: z.array(z.enum(NOTIFICATION_EVENTS)).min(1).describe("The events this channel is told about."),
  })
  .register(configNouns, { noun: "a notification channel" });

export const workflowTargetRuleSchema = z
  .strictObject({
    roles: z.array(z.string().min(1)).min(1).optional().describe("Access roles a request may ask for (e.g. read, write)."),
    requesters: z
      .array(group)
      .min(1, { message: "name at least one group that may request" })
      .describe("IdP groups whose members may request this (they need the requester role)."),
    stages: z.array(stageSchema).min(1, { message: "give at least one approval stage" }).describe("Approval stages, in order."),
    autoApprove: z
      .array(autoApproveSchema)
      .default([])
      .describe("Rules under which a request is approved without a person; the first match is named in the audit trail."),
    breakGlass: breakGlassSchema.optional().describe("Who may self-activate an emergency grant, and for how long at most."),
    minDuration: duration.prefault("5m").describe("Shortest grant a request may ask for (default 5m)."),
    maxDuration: duration
      .optional()
      .describe("Longest grant a request may ask for. Required for workflows that grant lasting access; absent for one-off actions."),
    pendingTimeout: duration.optional().describe("How long a request may wait for approval before it expires (default: defaults.pendingTimeout)."),
  })
  .register(configNouns, { noun: "a workflow's rule for a target" });

export const workflowPolicySchema = z
  .strictObject({
    targets: z.record(id, workflowTargetRuleSchema).describe("Target id -> who may request it, who approves, and the limits."),
  })
  .register(configNouns, { noun: "a workflow" });

const policyOf = <Blocks extends z.ZodRawShape>(blocks: Blocks) =>
  z
    .strictObject({
      version: z.literal(1).describe("Version of the policy format; always 1."),
      roles: z.record(group, z.array(z.enum(ROLES)).min(1)).describe("IdP group -> portal roles. Roles are recomputed at every sign-in."),
      targets: z.record(id, targetOf(blocks)).describe("What can be granted, by target id."),
      workflows: z.record(id, workflowPolicySchema).describe("Workflow id -> its rules per target."),
      defaults: z
        .strictObject({
          pendingTimeout: duration.prefault("24h").describe("How long a request may wait for approval when its rule sets no pendingTimeout (default 24h)."),
          expiringNotice: duration.prefault("10m").describe("How long before a grant expires its holder is told (default 10m)."),
        })
        .register(configNouns, { noun: "the defaults block" })
        .prefault({})
        .describe("Values used where a rule sets none."),
      notifications: z.array(notificationChannelSchema).default([]).describe("Channels told about requests, decisions and grants."),
    })
    .register(configNouns, { noun: "the policy" })
    .superRefine((policy, ctx) => {
      policy.notifications.forEach((channel, i) => {
        if (channel.kind === "webhook" && !channel.secretEnv) {
          ctx.addIssue({ code: "custom", path: ["notifications", i, "secretEnv"], message: "a webhook channel needs a signing secret" });
        }
      });
      for (const [workflowId, workflow] of Object.entries(policy.workflows)) {
        for (const [targetId, rule] of Object.entries(workflow.targets)) {
          const at = ["workflows", workflowId, "targets", targetId];
          if (!policy.targets[targetId]) {
            ctx.addIssue({ code: "custom", path: at, message: `unknown target "${targetId}" (declare it under targets)` });
          }
          if (rule.maxDuration !== undefined && rule.minDuration > rule.maxDuration) {
            ctx.addIssue({ code: "custom", path: [...at, "minDuration"], message: "is longer than maxDuration" });
          }
          rule.stages.forEach((stage, i) => {
            const unknown = stage.groups.filter((g) => !policy.roles[g]?.includes("approver"));
            if (unknown.length > 0) {
              ctx.addIssue({
                code: "custom",
                path: [...at, "stages", i, "groups"],
                message: `${unknown.join(", ")} cannot approve: map the group to the approver role under roles`,
              });
            }
          });
          if (rule.breakGlass && rule.maxDuration !== undefined && rule.breakGlass.maxDuration > rule.maxDuration) {
            ctx.addIssue({ code: "custom", path: [...at, "breakGlass", "maxDuration"], message: "is longer than maxDuration" });
          }
        }
      }
    });

const shipped = policyOf(targetBlocks());
export const policySchema = shipped;
export const targetSchema = shipped.shape.targets.valueType;

let current = { version: registryVersion(), schema: shipped };

/** The policy's schema with the integrations registered now: the shipped ones, and any a test added since start. */
export function currentPolicySchema(): typeof policySchema {
  if (current.version !== registryVersion()) current = { version: registryVersion(), schema: policyOf(targetBlocks()) };
  return current.schema;
}

export type Policy = z.infer<typeof policySchema>;
export type TargetDefinition = z.infer<typeof targetSchema>;
export type WorkflowTargetRule = z.infer<typeof workflowTargetRuleSchema>;
export type Stage = z.infer<typeof stageSchema>;
export type NotificationChannel = z.infer<typeof notificationChannelSchema>;
export type AutoApproveRule = z.infer<typeof autoApproveSchema>;
