import { formatDuration } from "./duration";
import { breakGlassRefusal, evaluateRequest, matchingAutoApproval, rolesForGroups, type Principal } from "./evaluate";
import type { Policy, Stage } from "./schema";
import { unavailability } from "../workflows/availability";

/** Plain-text reports of the policy, for reviews in pull requests and for questions. */

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

export function describeStage(stage: Stage, index: number): string {
  const who = stage.oneFromEachGroup ? `one from each of ${stage.groups.join(", ")}` : `${stage.required} of ${stage.groups.join(", ")}`;
  return `${index + 1}. ${stage.name}: ${who}`;
}

/** Who can request what and who approves it: one row per workflow and target. */
export function policyTable(policy: Policy): string {
  const roles = table(
    ["IdP group", "portal roles"],
    Object.entries(policy.roles).map(([group, r]) => [group, r.join(", ")]),
  );
  const rows: string[][] = [];
  for (const [workflowId, workflow] of Object.entries(policy.workflows)) {
    for (const [targetId, rule] of Object.entries(workflow.targets)) {
      rows.push([
        workflowId,
        targetId,
        rule.requesters.join(", "),
        rule.stages.map(describeStage).join("; "),
        rule.autoApprove.map((a) => a.name).join(", ") || "-",
        rule.breakGlass ? `${rule.breakGlass.groups.join(", ")} (max ${formatDuration(rule.breakGlass.maxDuration)})` : "-",
        rule.maxDuration === undefined ? "one-off" : `${formatDuration(rule.minDuration)}-${formatDuration(rule.maxDuration)}`,
        formatDuration(rule.pendingTimeout ?? policy.defaults.pendingTimeout),
      ]);
    }
  }
  const rules = table(["workflow", "target", "who may request", "approval stages", "auto-approve", "break-glass", "duration", "pending for"], rows);
  return `Roles\n${roles}\n\nRequests\n${rules}\n`;
}

/** "Could this person request this, and who would have to approve it?" */
export function explain(
  policy: Policy,
  input: { email: string; groups: string[]; workflowId: string; targetId: string; knownApprovers?: { email: string; groups: string[] }[] },
): { allowed: boolean; text: string } {
  const roles = rolesForGroups(policy, input.groups);
  const who: Principal = { id: input.email, email: input.email, groups: input.groups, roles };
  const rule = policy.workflows[input.workflowId]?.targets[input.targetId];
  const lines = [`${input.email}: groups ${input.groups.join(", ") || "(none)"}; roles ${roles.join(", ") || "(none)"}`];
  if (!rule) {
    lines.push(`NO: the policy has no rule for workflow "${input.workflowId}" on target "${input.targetId}".`);
    return { allowed: false, text: lines.join("\n") };
  }
  const verdict = evaluateRequest(policy, {
    workflowId: input.workflowId,
    targetId: input.targetId,
    who,
    durationSeconds: rule.maxDuration === undefined ? undefined : rule.minDuration,
    accessRole: rule.roles?.[0],
  });
  if (!verdict.ok) {
    lines.push(`NO: ${verdict.message}`);
    return { allowed: false, text: lines.join("\n") };
  }
  const span = rule.maxDuration === undefined ? "" : `, for ${formatDuration(rule.minDuration)} to ${formatDuration(rule.maxDuration)}`;
  lines.push(`YES: may request ${input.workflowId} on ${verdict.target.title}${rule.roles ? ` as ${rule.roles.join(" or ")}` : ""}${span}.`);
  lines.push("Approval, in order:");
  rule.stages.forEach((stage, i) => {
    lines.push(`  ${describeStage(stage, i)}`);
    if (input.knownApprovers) {
      const eligible = input.knownApprovers.filter(
        (a) => a.email !== input.email && a.groups.some((g) => stage.groups.includes(g)) && rolesForGroups(policy, a.groups).includes("approver"),
      );
      lines.push(`     can approve: ${eligible.map((a) => a.email).join(", ") || "nobody known yet"}`);
    }
  });
  for (const auto of rule.autoApprove) {
    const example = matchingAutoApproval(
      { ...rule, autoApprove: [auto] },
      { who, durationSeconds: auto.maxDuration ?? rule.minDuration, accessRole: auto.roles?.[0] ?? rule.roles?.[0] },
    );
    const conditions = [
      auto.roles && `role ${auto.roles.join("/")}`,
      auto.maxDuration !== undefined && `at most ${formatDuration(auto.maxDuration)}`,
      auto.requesterGroups && `requester in ${auto.requesterGroups.join("/")}`,
    ]
      .filter(Boolean)
      .join(", ");
    lines.push(`Auto-approved by "${auto.name}" when ${conditions}${example ? "" : " (does not apply to this person)"}.`);
  }
  if (rule.breakGlass)
    lines.push(
      breakGlassRefusal(rule, who, 0) === null
        ? `Break-glass: allowed, up to ${formatDuration(rule.breakGlass.maxDuration)}, reviewed afterwards.`
        : "Break-glass: not for this person.",
    );
  return { allowed: true, text: lines.join("\n") };
}

/**
 * Workflow targets that cannot be carried out with this environment: requests for them are
 * refused, so the reviewer of a policy change should know before it ships. Also Slack
 * channels and buttons the environment leaves switched off.
 */
export function availabilityWarnings(policy: Policy, env: Record<string, string | undefined>): string[] {
  const warnings: string[] = [];
  for (const [workflowId, workflow] of Object.entries(policy.workflows)) {
    for (const targetId of Object.keys(workflow.targets)) {
      const target = policy.targets[targetId];
      const u = target && unavailability(workflowId, target, env);
      if (u) warnings.push(`warning: ${workflowId} on ${targetId} is unavailable: ${u.reason}${u.missing.length ? ` Set ${u.missing.join(", ")}.` : ""}`);
    }
  }
  for (const [targetId, target] of Object.entries(policy.targets)) {
    if (!target.slack) continue;
    if (!env.LATCHKEY_SLACK_BOT_TOKEN) warnings.push(`warning: ${targetId} names Slack channels, but the Slack app is off. Set LATCHKEY_SLACK_BOT_TOKEN.`);
    else if (target.slack.buttons && !env.LATCHKEY_SLACK_SIGNING_SECRET)
      warnings.push(`warning: ${targetId} asks for Slack buttons, but they stay hidden until clicks can be verified. Set LATCHKEY_SLACK_SIGNING_SECRET.`);
  }
  return warnings;
}
