import type { TargetDefinition } from "../../policy/schema";
import { httpTicket, jiraIssue, TicketCheckError, type TicketState } from "./client";
import type { TicketRule } from "./schema";

/**
 * The ticket a request names, checked against its target's ticket rule before anyone is
 * asked to approve. Refusals are typed ({ code, message }) so the engine maps them to the
 * right error; a check that cannot be made refuses too (fail closed): a production grant
 * never rests on a ticket nobody could confirm.
 */

export interface TicketRef {
  key: string;
  url: string | null;
}

export type TicketVerdict =
  { ok: true; ticket: TicketRef | null; state?: TicketState } | { ok: false; code: "missing" | "not_found" | "closed" | "unavailable"; message: string };

/** The first ticket key in the text matching the pattern, on word boundaries. */
export function findTicketKey(pattern: string, text: string): string | null {
  const match = new RegExp(`(?<![\\w-])(?:${pattern})(?![\\w-])`, "u").exec(text);
  return match ? match[0] : null;
}

function env(name: string | undefined): string | undefined {
  return name ? process.env[name] || undefined : undefined;
}

export function ticketLink(rule: TicketRule, key: string): string | null {
  const jiraBase = rule.jira ? env(rule.jira.urlEnv) : undefined;
  const template = rule.link ?? (jiraBase ? `${jiraBase.replace(/\/+$/, "")}/browse/{key}` : undefined);
  return template ? template.replaceAll("{key}", encodeURIComponent(key)) : null;
}

export async function checkTicket(target: TargetDefinition, justification: string): Promise<TicketVerdict> {
  const rule = target.ticket;
  if (!rule) return { ok: true, ticket: null };
  const key = findTicketKey(rule.pattern, justification);
  if (!key) {
    const example = rule.example ? ` such as ${rule.example}` : "";
    return { ok: false, code: "missing", message: `${target.title} needs a ticket reference${example} in the justification (matching ${rule.pattern}).` };
  }
  const ticket = { key, url: ticketLink(rule, key) };
  if (!rule.jira && !rule.http) return { ok: true, ticket };
  const system = rule.jira ? "Jira" : "the ticket system";
  let state: TicketState | null;
  try {
    if (rule.jira) {
      const [baseUrl, user, token] = [env(rule.jira.urlEnv), env(rule.jira.userEnv), env(rule.jira.tokenEnv)];
      if (!baseUrl || !user || !token) throw new TicketCheckError(`${rule.jira.urlEnv}, ${rule.jira.userEnv} or ${rule.jira.tokenEnv} is not set`);
      state = await jiraIssue({ baseUrl, user, token }, key);
    } else {
      const url = env(rule.http!.urlEnv);
      if (!url) throw new TicketCheckError(`${rule.http!.urlEnv} is not set`);
      state = await httpTicket(url, env(rule.http!.tokenEnv), key);
    }
  } catch (error) {
    if (!(error instanceof TicketCheckError)) throw error;
    return {
      ok: false,
      code: "unavailable",
      message: `Ticket ${key} could not be checked in ${system}, so the request was not made: ${error.message}. Try again later.`,
    };
  }
  if (!state)
    return { ok: false, code: "not_found", message: `Ticket ${key} does not exist in ${system} (or Latchkey may not see it). Give an existing ticket.` };
  if (!state.open)
    return { ok: false, code: "closed", message: `Ticket ${key} is closed in ${system} (status "${state.status}"). ${target.title} needs an open ticket.` };
  return { ok: true, ticket, state };
}
