import "server-only";
import nodemailer from "nodemailer";
import { db } from "../db";
import { env } from "../env";
import { EMAIL_CHANNEL } from "../notifications/email";
import { policy } from "../policy/current";
import { opsgenieOnCall, pagerDutyOnCall } from "./oncall/client";
import { onCallConnection } from "./oncall/lookup";
import type { OnCallSchedule } from "./oncall/schema";
import { httpTicket, jiraIssue } from "./tickets/client";

/**
 * Health of the services approvals lean on, for Admin → Integrations: the SMTP server,
 * each ticket check and each on-call schedule the policy names. Each is asked something
 * harmless that needs both reachability and valid credentials (an SMTP handshake with
 * AUTH, a ticket key that cannot exist, the schedule's current on-call), within 5 s.
 */

export interface ServiceStatus {
  system: "smtp" | "jira" | "ticket-http" | "pagerduty" | "opsgenie";
  /** What it is used for, e.g. the target or the schedule. */
  subject: string;
  reachable: boolean;
  detail: string;
  lastErrors: { at: Date; message: string }[];
}

/** A ticket key no tracker has: a 404 for it proves the service answers and accepts the credentials. */
const NO_SUCH_TICKET = "LATCHKEYHEALTH-0";

async function probe(work: () => Promise<string>): Promise<{ reachable: boolean; detail: string }> {
  try {
    const detail = await Promise.race([work(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer within 5 s")), 5_000))]);
    return { reachable: true, detail };
  } catch (error) {
    return { reachable: false, detail: (error as Error).message };
  }
}

const unset = (names: string) => Promise.resolve({ reachable: false, detail: `${names} is not set` });

async function smtpStatus(): Promise<ServiceStatus | null> {
  const url = env().LATCHKEY_SMTP_URL;
  if (!url) return null;
  const failed = await db.notificationDelivery.findMany({
    where: { channel: EMAIL_CHANNEL, lastError: { not: null } },
    orderBy: { nextAttemptAt: "desc" },
    take: 3,
    select: { nextAttemptAt: true, lastError: true },
  });
  const check = await probe(async () => {
    const transport = nodemailer.createTransport(url);
    try {
      await transport.verify();
      return "accepted a connection and the credentials";
    } finally {
      transport.close();
    }
  });
  return {
    system: "smtp",
    subject: `e-mail from ${env().LATCHKEY_SMTP_FROM}`,
    ...check,
    lastErrors: failed.map((f) => ({ at: f.nextAttemptAt, message: f.lastError! })),
  };
}

function ticketStatuses(): Promise<ServiceStatus>[] {
  return Object.values(policy().targets).flatMap((target) => {
    const rule = target.ticket;
    if (rule?.jira) {
      const { urlEnv, userEnv, tokenEnv } = rule.jira;
      const [baseUrl, user, token] = [process.env[urlEnv], process.env[userEnv], process.env[tokenEnv]];
      const run =
        baseUrl && user && token
          ? probe(async () => {
              await jiraIssue({ baseUrl, user, token }, NO_SUCH_TICKET);
              return "answered";
            })
          : unset(`${urlEnv}, ${userEnv} or ${tokenEnv}`);
      return [run.then((r) => ({ system: "jira" as const, subject: target.title, ...r, lastErrors: [] }))];
    }
    if (rule?.http) {
      const url = process.env[rule.http.urlEnv];
      const token = rule.http.tokenEnv ? process.env[rule.http.tokenEnv] : undefined;
      const run = url
        ? probe(async () => {
            await httpTicket(url, token, NO_SUCH_TICKET);
            return "answered";
          })
        : unset(rule.http.urlEnv);
      return [run.then((r) => ({ system: "ticket-http" as const, subject: target.title, ...r, lastErrors: [] }))];
    }
    return [];
  });
}

function schedulesInPolicy(): OnCallSchedule[] {
  const found = new Map<string, OnCallSchedule>();
  for (const workflow of Object.values(policy().workflows)) {
    for (const rule of Object.values(workflow.targets)) {
      for (const s of [...rule.autoApprove.map((a) => a.onCall), ...rule.stages.map((st) => st.onCall)]) if (s) found.set(`${s.provider}:${s.schedule}`, s);
    }
  }
  return [...found.values()];
}

async function onCallStatus(schedule: OnCallSchedule): Promise<ServiceStatus> {
  const { baseUrl, token } = onCallConnection(schedule.provider);
  const recent = await db.auditEvent.findMany({
    where: { action: "request.on_call_unknown", data: { path: ["schedule"], equals: schedule.schedule } },
    orderBy: { id: "desc" },
    take: 3,
    select: { occurredAt: true, data: true },
  });
  const lastErrors = recent.map((e) => ({ at: e.occurredAt, message: String((e.data as { reason?: unknown }).reason ?? "") }));
  const subject = `schedule ${schedule.schedule}`;
  if (!token)
    return {
      system: schedule.provider,
      subject,
      ...(await unset(schedule.provider === "pagerduty" ? "LATCHKEY_PAGERDUTY_TOKEN" : "LATCHKEY_OPSGENIE_TOKEN")),
      lastErrors,
    };
  const check = await probe(async () => {
    const shifts =
      schedule.provider === "pagerduty"
        ? await pagerDutyOnCall({ baseUrl, token }, schedule.schedule)
        : await opsgenieOnCall({ baseUrl, token }, schedule.schedule);
    return `answered: ${shifts.length} on call now`;
  });
  return { system: schedule.provider, subject, ...check, lastErrors };
}

export async function approvalServiceStatuses(): Promise<ServiceStatus[]> {
  const [smtp, ...rest] = await Promise.all([smtpStatus(), ...ticketStatuses(), ...schedulesInPolicy().map(onCallStatus)]);
  return [...(smtp ? [smtp] : []), ...(rest as ServiceStatus[])];
}
