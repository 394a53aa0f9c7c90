import "server-only";
import { db } from "../../db";
import { policy } from "../../policy/current";
import { probe, unsetSettings, type IntegrationHealth, type ServiceStatus } from "../adapter";
import { opsgenieOnCall, pagerDutyOnCall } from "./client";
import { onCallConnection } from "./lookup";
import type { OnCallSchedule } from "./schema";

function schedulesInPolicy(): OnCallSchedule[] {
  const found = new Map<string, OnCallSchedule>();
  for (const workflow of Object.values(policy().workflows)) {
    for (const rule of Object.values(workflow.targets)) {
      for (const s of [...rule.autoApprove.map((a) => a.onCall), ...rule.stages.map((st) => st.onCall)]) if (s) found.set(`${s.provider}:${s.schedule}`, s);
    }
  }
  return [...found.values()];
}

/** Each schedule the policy names, asked who is on call now; with the last lookups that failed during a request. */
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
      ...(await unsetSettings(schedule.provider === "pagerduty" ? "LATCHKEY_PAGERDUTY_TOKEN" : "LATCHKEY_OPSGENIE_TOKEN")),
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

export const health: IntegrationHealth = { services: () => Promise.all(schedulesInPolicy().map(onCallStatus)) };
