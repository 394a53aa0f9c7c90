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
  /** For database targets: where to connect (an environment variable, never the URL itself) and what each role may do. */
  database: z
    .object({
      connectionEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/, { message: "must name an environment variable (secrets never live in the policy)" }),
      schema: z.string().min(1).default("public"),
      privileges: z.record(z.string(), z.array(z.enum(["SELECT", "INSERT", "UPDATE", "DELETE"])).min(1)),
    })
    .optional(),
  /** For scheduled jobs: the Airflow DAG and where to reach Airflow (environment variable names, never values). */
  airflow: z
    .object({
      dagId: z.string().regex(/^[\w.-]+$/, { message: "must be a DAG id" }),
      version: z.enum(["v1", "v2"]).default("v2"),
      urlEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
      userEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
      passwordEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
      /** Whether Latchkey may unpause the DAG to run it; if not, a paused DAG fails the request, saying so. */
      unpause: z.boolean().default(false),
      /** How long a run may stay queued before the request fails with that reason (default 1h). */
      queuedTimeout: duration.optional(),
    })
    .optional(),
  /** For routes through HAProxy: the backend a grant opens. */
  haproxy: z.object({ backend: z.string().regex(/^[A-Za-z0-9._-]+$/, { message: "must be an HAProxy backend name" }) }).optional(),
  /** For sites behind a proxy that asks /api/forward-auth: the hosts and paths an active grant on this target opens. */
  forwardAuth: z
    .array(
      z.object({
        host: z
          .string()
          .regex(/^[a-z0-9.-]+$/, { message: "must be a lower-case host name, without scheme or port" }),
        pathPrefix: z.string().startsWith("/", { message: "must start with /" }).default("/"),
      }),
    )
    .optional(),
});

/** One approval stage: N distinct approvers from these groups, or one from each group. */
export const stageSchema = z
  .object({
    name: z.string().min(1),
    groups: z.array(group).min(1, { message: "name at least one approver group" }),
    required: z.number().int().min(1).default(1),
    oneFromEachGroup: z.boolean().default(false),
  })
  .transform((stage) => (stage.oneFromEachGroup ? { ...stage, required: stage.groups.length } : stage));

/** A request matching every condition given is approved without a person, naming the rule. */
export const autoApproveSchema = z
  .object({
    name: id,
    roles: z.array(z.string().min(1)).min(1).optional(),
    maxDuration: duration.optional(),
    requesterGroups: z.array(group).min(1).optional(),
  })
  .refine((r) => r.roles || r.maxDuration !== undefined || r.requesterGroups, { message: "give at least one condition (roles, maxDuration, requesterGroups)" });

/** Who may self-activate an emergency grant, and for how long at most. */
export const breakGlassSchema = z.object({
  groups: z.array(group).min(1),
  maxDuration: duration,
});

export const NOTIFICATION_EVENTS = ["pending", "approved", "rejected", "expiring", "expired", "break-glass"] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

const envName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, { message: "must name an environment variable (secrets never live in the policy)" });

/** Where notifications go. URLs and secrets come from the environment variables named here. */
export const notificationChannelSchema = z.object({
  name: id,
  kind: z.enum(["slack", "webhook"]),
  urlEnv: envName,
  /** HMAC-SHA256 key for "webhook" channels. */
  secretEnv: envName.optional(),
  events: z.array(z.enum(NOTIFICATION_EVENTS)).min(1),
});

export const workflowTargetRuleSchema = z.object({
  roles: z.array(z.string().min(1)).min(1).optional(),
  requesters: z.array(group).min(1, { message: "name at least one group that may request" }),
  stages: z.array(stageSchema).min(1, { message: "give at least one approval stage" }),
  autoApprove: z.array(autoApproveSchema).default([]),
  breakGlass: breakGlassSchema.optional(),
  minDuration: duration.prefault("5m"),
  /** Required for workflows that grant lasting access; absent for one-off actions. */
  maxDuration: duration.optional(),
  /** How long a request may wait for approval before it expires. */
  pendingTimeout: duration.optional(),
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
    defaults: z.object({ pendingTimeout: duration.prefault("24h"), expiringNotice: duration.prefault("10m") }).prefault({}),
    notifications: z.array(notificationChannelSchema).default([]),
  })
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
            ctx.addIssue({ code: "custom", path: [...at, "stages", i, "groups"], message: `${unknown.join(", ")} cannot approve: map the group to the approver role under roles` });
          }
        });
        if (rule.breakGlass && rule.maxDuration !== undefined && rule.breakGlass.maxDuration > rule.maxDuration) {
          ctx.addIssue({ code: "custom", path: [...at, "breakGlass", "maxDuration"], message: "is longer than maxDuration" });
        }
      }
    }
  });

export type Policy = z.infer<typeof policySchema>;
export type TargetDefinition = z.infer<typeof targetSchema>;
export type WorkflowTargetRule = z.infer<typeof workflowTargetRuleSchema>;
export type Stage = z.infer<typeof stageSchema>;
export type NotificationChannel = z.infer<typeof notificationChannelSchema>;
export type AutoApproveRule = z.infer<typeof autoApproveSchema>;
