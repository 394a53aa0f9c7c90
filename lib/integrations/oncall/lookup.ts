import { env } from "../../env";
import { OnCallError, opsgenieOnCall, pagerDutyOnCall, type OnCallShift } from "./client";
import type { OnCallSchedule } from "./schema";

/**
 * Whether a person is on call for a schedule now. A lookup that fails (service unreachable,
 * token unset or refused, rate limit) answers "unknown" with the reason, and callers treat
 * that as not on call: an on-call rule never approves or empowers anyone on a guess.
 */
export type OnCallAnswer = { state: "on-call"; shift: OnCallShift } | { state: "not-on-call" } | { state: "unknown"; reason: string };

export function onCallConnection(provider: OnCallSchedule["provider"]): { baseUrl: string; token: string | undefined } {
  const e = env();
  return provider === "pagerduty"
    ? { baseUrl: e.LATCHKEY_PAGERDUTY_URL, token: e.LATCHKEY_PAGERDUTY_TOKEN }
    : { baseUrl: e.LATCHKEY_OPSGENIE_URL, token: e.LATCHKEY_OPSGENIE_TOKEN };
}

export async function onCallNow(schedule: OnCallSchedule, email: string, now = new Date()): Promise<OnCallAnswer> {
  const { baseUrl, token } = onCallConnection(schedule.provider);
  if (!token) return { state: "unknown", reason: `${schedule.provider === "pagerduty" ? "LATCHKEY_PAGERDUTY_TOKEN" : "LATCHKEY_OPSGENIE_TOKEN"} is not set` };
  try {
    const shifts =
      schedule.provider === "pagerduty"
        ? await pagerDutyOnCall({ baseUrl, token }, schedule.schedule, now)
        : await opsgenieOnCall({ baseUrl, token }, schedule.schedule, now);
    const shift = shifts.find((s) => s.email === email.toLowerCase());
    return shift ? { state: "on-call", shift } : { state: "not-on-call" };
  } catch (error) {
    if (error instanceof OnCallError) return { state: "unknown", reason: error.message };
    throw error;
  }
}

/** The shift as the audit trail records it. */
export function shiftRecord(shift: OnCallShift): Record<string, string | null> {
  return { provider: shift.provider, schedule: shift.schedule, email: shift.email, start: shift.start, end: shift.end, checkedAt: shift.checkedAt };
}
