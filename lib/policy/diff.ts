import { formatDuration } from "./duration";
import { rolesForGroups } from "./evaluate";
import type { AutoApproveRule, Policy, Stage } from "./schema";

/**
 * What changes in who may do what between two versions of the policy, for a reviewer: a YAML
 * diff shows moved lines, this shows that engineering can no longer request production, or
 * that an auto-approval window doubled. Each version is reduced to facts (one per workflow,
 * target and aspect), and the facts are compared. People come from their last sign-ins when
 * known; without them, the facts speak of groups only.
 */
export interface Person {
  email: string;
  groups: string[];
  /** A service identity that may never approve. */
  requestOnly?: boolean;
}

interface Fact {
  area: string;
  aspect: string;
  text: string;
  /** For facts that are sets of groups: compared item by item. */
  items?: string[];
  /** The people the fact reaches (who may request, who may approve), when people are known. */
  people?: string[];
}

export interface PolicyChange {
  area: string;
  aspect: string;
  before: string;
  after: string;
  sentence: string;
  gaining: string[];
  losing: string[];
}

function autoText(auto: AutoApproveRule): string {
  const conditions = [
    auto.roles && `role ${auto.roles.join("/")}`,
    auto.maxDuration !== undefined && `at most ${formatDuration(auto.maxDuration)}`,
    auto.requesterGroups && `requester in ${auto.requesterGroups.join("/")}`,
  ];
  return conditions.filter(Boolean).join(", ");
}

function stageText(stage: Stage): string {
  return `${stage.name}: ${stage.oneFromEachGroup ? "one from each of" : `${stage.required} of`} ${stage.groups.join(", ")}`;
}

function factsOf(policy: Policy, people: readonly Person[] | undefined): Map<string, Fact> {
  const facts = new Map<string, Fact>();
  const add = (fact: Fact) => facts.set(`${fact.area}\u0000${fact.aspect}`, fact);
  const reach = (test: (p: Person, roles: string[]) => boolean) =>
    people
      ?.filter((p) => test(p, rolesForGroups(policy, p.groups)))
      .map((p) => p.email)
      .sort();
  for (const [group, roles] of Object.entries(policy.roles)) add({ area: `group ${group}`, aspect: "portal roles", text: roles.join(", "), items: [...roles] });
  for (const [workflowId, workflow] of Object.entries(policy.workflows)) {
    for (const [targetId, rule] of Object.entries(workflow.targets)) {
      const area = `${workflowId} on ${targetId}`;
      const requesters = rule.requesters.filter((g) => policy.roles[g]?.includes("requester"));
      add({
        area,
        aspect: "may request",
        text: requesters.join(", ") || "nobody",
        items: requesters,
        people: reach((p, roles) => roles.includes("requester") && p.groups.some((g) => rule.requesters.includes(g))),
      });
      if (rule.roles) add({ area, aspect: "access roles", text: rule.roles.join(", "), items: [...rule.roles] });
      rule.stages.forEach((stage, i) =>
        add({
          area,
          aspect: `stage ${i + 1} approvers`,
          text: stageText(stage),
          people: reach((p, roles) => !p.requestOnly && roles.includes("approver") && p.groups.some((g) => stage.groups.includes(g))),
        }),
      );
      for (const auto of rule.autoApprove) add({ area, aspect: `auto-approval ${auto.name}`, text: autoText(auto) });
      add({
        area,
        aspect: "duration",
        text: rule.maxDuration === undefined ? "one-off" : `${formatDuration(rule.minDuration)} to ${formatDuration(rule.maxDuration)}`,
      });
      add({ area, aspect: "pending for", text: formatDuration(rule.pendingTimeout ?? policy.defaults.pendingTimeout) });
      if (rule.breakGlass) {
        const groups = rule.breakGlass.groups;
        // Break-glass is a request too: only a requester of this rule may open it.
        add({
          area,
          aspect: "break-glass by",
          text: groups.join(", "),
          items: [...groups],
          people: reach(
            (p, roles) => roles.includes("requester") && p.groups.some((g) => rule.requesters.includes(g)) && p.groups.some((g) => groups.includes(g)),
          ),
        });
        add({ area, aspect: "break-glass for at most", text: formatDuration(rule.breakGlass.maxDuration) });
      }
    }
  }
  for (const [targetId, target] of Object.entries(policy.targets)) {
    const opens = [
      ...(target.forwardAuth ?? []).map((f) => `${f.host}${f.pathPrefix}`),
      ...(target.haproxy ? [`HAProxy backend ${target.haproxy.backend}`] : []),
      ...Object.entries(target.database?.privileges ?? {}).map(([role, privileges]) => `${role}: ${privileges.join("/")}`),
    ];
    if (opens.length) add({ area: `target ${targetId}`, aspect: "a grant opens", text: opens.join("; "), items: opens });
  }
  for (const channel of policy.notifications) {
    add({ area: `notifications ${channel.name}`, aspect: "sent to", text: `${channel.kind} at $${channel.urlEnv}` });
    add({ area: `notifications ${channel.name}`, aspect: "events", text: channel.events.join(", "), items: [...channel.events] });
  }
  add({ area: "defaults", aspect: "expiring notice", text: formatDuration(policy.defaults.expiringNotice) });
  return facts;
}

const minus = (a: readonly string[] = [], b: readonly string[] = []) => a.filter((x) => !b.includes(x));

function sentenceOf(area: string, aspect: string, before: Fact | undefined, after: Fact | undefined, gaining: string[], losing: string[]): string {
  let text: string;
  if (!before) text = `${area}: ${aspect} is new: ${after!.text}.`;
  else if (!after) text = `${area}: ${aspect} is gone (was ${before.text}).`;
  else if (before.items && after.items) {
    const added = minus(after.items, before.items);
    const removed = minus(before.items, after.items);
    text = `${area}: ${aspect}: ${[added.length && `${added.join(", ")} added`, removed.length && `${removed.join(", ")} removed`].filter(Boolean).join("; ") || `${before.text} → ${after.text}`}.`;
  } else text = `${area}: ${aspect}: ${before.text} → ${after.text}.`;
  if (gaining.length) text += ` Now also: ${gaining.join(", ")}.`;
  if (losing.length) text += ` No longer: ${losing.join(", ")}.`;
  return text;
}

/** Every fact that differs between the two versions, in the order of the newer file, removals last. */
export function diffPolicies(before: Policy, after: Policy, people?: readonly Person[]): PolicyChange[] {
  const old = factsOf(before, people);
  const now = factsOf(after, people);
  const keys = [...now.keys(), ...[...old.keys()].filter((k) => !now.has(k))];
  const changes: PolicyChange[] = [];
  for (const key of keys) {
    const was = old.get(key);
    const is = now.get(key);
    const gaining = minus(is?.people, was?.people);
    const losing = minus(was?.people, is?.people);
    if (was?.text === is?.text && gaining.length === 0 && losing.length === 0) continue;
    const { area, aspect } = (is ?? was)!;
    changes.push({
      area,
      aspect,
      before: was?.text ?? "-",
      after: is?.text ?? "-",
      sentence: sentenceOf(area, aspect, was, is, gaining, losing),
      gaining,
      losing,
    });
  }
  return changes;
}

function textTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

const cell = (text: string) => text.replace(/\|/g, "\\|");

/** The changes in words, then as a table; Markdown for a pull-request comment. */
export function renderDiff(changes: readonly PolicyChange[], options: { before: string; after: string; peopleKnown: boolean; markdown: boolean }): string {
  const title = `Access changes from ${options.before} to ${options.after}`;
  const peopleNote = options.peopleKnown ? "people as known from their last sign-ins" : "groups only (no database to resolve them to people)";
  if (changes.length === 0) return options.markdown ? `### ${title}\n\nNo change in who may do what.\n` : `${title}\nNo change in who may do what.\n`;
  const headers = ["where", "what", "before", "after", ...(options.peopleKnown ? ["gaining", "losing"] : [])];
  const rows = changes.map((c) => [
    c.area,
    c.aspect,
    c.before,
    c.after,
    ...(options.peopleKnown ? [c.gaining.join(", ") || "-", c.losing.join(", ") || "-"] : []),
  ]);
  if (options.markdown) {
    return [
      `### ${title}`,
      "",
      `${changes.length} change${changes.length === 1 ? "" : "s"}; ${peopleNote}.`,
      "",
      ...changes.map((c) => `- ${c.sentence}`),
      "",
      `| ${headers.join(" | ")} |`,
      `|${headers.map(() => " --- ").join("|")}|`,
      ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
      "",
    ].join("\n");
  }
  return [
    `${title} (${changes.length} change${changes.length === 1 ? "" : "s"}; ${peopleNote})`,
    "",
    ...changes.map((c) => `- ${c.sentence}`),
    "",
    textTable(headers, rows),
    "",
  ].join("\n");
}
