import type { OnCallProvider } from "./schema";

/**
 * Who is on call now, read from PagerDuty's REST API v2 (`GET /oncalls?schedule_ids[]=…`
 * with `include[]=users`, so each entry carries the user's e-mail) or Opsgenie's
 * (`GET /v2/schedules/{id}/on-calls`, whose participants are named by e-mail). People are
 * matched by e-mail, lower-cased, the identity both services and Latchkey share.
 * Every failure throws OnCallError; the caller then treats the rule as not met.
 */

export interface OnCallShift {
  provider: OnCallProvider;
  schedule: string;
  email: string;
  /** When the shift started and ends, where the service says (PagerDuty does; Opsgenie's on-calls answer does not). */
  start: string | null;
  end: string | null;
  checkedAt: string;
}

export class OnCallError extends Error {}

export interface OnCallConnection {
  baseUrl: string;
  token: string;
}

async function get(url: string, headers: Record<string, string>, system: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { ...headers, "user-agent": "Latchkey" }, signal: AbortSignal.timeout(5_000) });
  } catch (error) {
    throw new OnCallError(`${system} could not be reached (${(error as Error).message})`);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* an error page: the status says enough */
  }
  if (response.status === 429) {
    const after = response.headers.get("retry-after") ?? response.headers.get("ratelimit-reset");
    throw new OnCallError(`${system} is rate-limiting Latchkey (HTTP 429${after ? `, retry after ${after} s` : ""})`);
  }
  if (!response.ok) {
    const b = body as { error?: { message?: unknown; errors?: unknown }; message?: unknown } | null;
    const why = typeof b?.error?.message === "string" ? b.error.message : typeof b?.message === "string" ? b.message : "";
    throw new OnCallError(`${system} answered HTTP ${response.status}${why ? `: ${why}` : ""}`);
  }
  return body;
}

/** Everyone on call now for a PagerDuty schedule (any escalation level). */
export async function pagerDutyOnCall(pd: OnCallConnection, schedule: string, now = new Date()): Promise<OnCallShift[]> {
  const url = new URL("/oncalls", pd.baseUrl);
  url.searchParams.append("schedule_ids[]", schedule);
  url.searchParams.append("include[]", "users");
  url.searchParams.set("time_zone", "UTC");
  url.searchParams.set("limit", "100");
  const body = (await get(url.href, { accept: "application/vnd.pagerduty+json;version=2", authorization: `Token token=${pd.token}` }, "PagerDuty")) as {
    oncalls?: { user?: { email?: unknown }; schedule?: { id?: unknown } | null; start?: unknown; end?: unknown }[];
  } | null;
  if (!Array.isArray(body?.oncalls)) throw new OnCallError("PagerDuty's answer has no oncalls list");
  const checkedAt = now.toISOString();
  return body.oncalls
    .filter((o) => typeof o.user?.email === "string" && o.schedule?.id === schedule)
    .map((o) => ({
      provider: "pagerduty" as const,
      schedule,
      email: String(o.user!.email).toLowerCase(),
      start: typeof o.start === "string" ? o.start : null,
      end: typeof o.end === "string" ? o.end : null,
      checkedAt,
    }));
}

/** Everyone on call now for an Opsgenie schedule, by id or by name. */
export async function opsgenieOnCall(og: OnCallConnection, schedule: string, now = new Date()): Promise<OnCallShift[]> {
  const byName = !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(schedule);
  const url = new URL(`/v2/schedules/${encodeURIComponent(schedule)}/on-calls`, og.baseUrl);
  url.searchParams.set("scheduleIdentifierType", byName ? "name" : "id");
  url.searchParams.set("flat", "false");
  url.searchParams.set("date", now.toISOString());
  const body = (await get(url.href, { accept: "application/json", authorization: `GenieKey ${og.token}` }, "Opsgenie")) as {
    data?: { onCallParticipants?: { name?: unknown; type?: unknown }[] };
  } | null;
  if (!Array.isArray(body?.data?.onCallParticipants)) throw new OnCallError("Opsgenie's answer has no onCallParticipants list");
  const checkedAt = now.toISOString();
  return body.data.onCallParticipants
    .filter((p) => p.type === "user" && typeof p.name === "string")
    .map((p) => ({ provider: "opsgenie" as const, schedule, email: String(p.name).toLowerCase(), start: null, end: null, checkedAt }));
}
