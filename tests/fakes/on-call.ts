import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Fakes of the two on-call endpoints Latchkey reads, as their published API documents
 * describe them. Each keeps a roster per schedule (who is on call now, and their shift),
 * records every request, can be told to rate-limit (429 with Retry-After) and checks the
 * token the way its service does.
 *
 * PagerDuty REST API v2, `GET /oncalls`: `Authorization: Token token=<key>` and
 * `Accept: application/vnd.pagerduty+json;version=2`; `schedule_ids[]` filters, and
 * `include[]=users` expands each `user` reference into the full user (with `email`);
 * a page `{oncalls, limit, offset, more, total}`; errors as `{"error": {"message", "code"}}`;
 * an unknown schedule id simply matches nothing.
 *
 * Opsgenie, `GET /v2/schedules/{identifier}/on-calls`: `Authorization: GenieKey <key>`,
 * `scheduleIdentifierType` id or name, `flat`; the answer
 * `{data: {_parent: {id, name, enabled}, onCallParticipants: [{id, name, type}]}, took, requestId}`
 * (with `flat=true`, `onCallRecipients: [name]` instead); an unknown schedule is 404
 * `{message, took, requestId}`, a bad key 401 `{message: "Could not authenticate", ...}`.
 */
export interface Shift {
  email: string;
  start: string;
  end: string;
}

function recorder() {
  const requests: { path: string; authorization?: string; accept?: string }[] = [];
  let throttle = { count: 0, retryAfter: 0 };
  let down = false;
  let nextCall: (() => Promise<void>) | null = null;
  return {
    requests,
    rateLimit: (count: number, retryAfter: number) => (throttle = { count, retryAfter }),
    setDown: (value: boolean) => (down = value),
    /** Runs `work` when the next call arrives, and answers it only once `work` is done (something happening while a lookup is in flight). */
    onNextCall: (work: () => Promise<void>) => (nextCall = work),
    async beforeAnswer(): Promise<void> {
      const work = nextCall;
      nextCall = null;
      await work?.();
    },
    /** True when the call was answered here (down, throttled). */
    intercept(req: http.IncomingMessage, res: http.ServerResponse, body: unknown): boolean {
      requests.push({ path: req.url ?? "", authorization: req.headers.authorization, accept: req.headers.accept });
      if (down) {
        res.writeHead(503, { "content-type": "text/html" }).end("<html><body>503 Service Unavailable</body></html>");
        return true;
      }
      if (throttle.count > 0) {
        throttle.count -= 1;
        res.writeHead(429, { "content-type": "application/json", "retry-after": String(throttle.retryAfter) }).end(JSON.stringify(body));
        return true;
      }
      return false;
    },
  };
}

function serve(handler: http.RequestListener) {
  const server = http.createServer(handler);
  return {
    async start(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const json = (res: http.ServerResponse, status: number, body: unknown, type = "application/json") =>
  res.writeHead(status, { "content-type": type }).end(JSON.stringify(body));

export function pagerDutyFake(token: string) {
  const rosters = new Map<string, Shift[]>();
  const rec = recorder();
  const server = serve(async (req, res) => {
    await rec.beforeAnswer();
    if (rec.intercept(req, res, { error: { message: "Rate Limit Exceeded", code: 2020 } })) return;
    const url = new URL(req.url ?? "/", "http://pagerduty.invalid");
    if (req.headers.authorization !== `Token token=${token}`) return json(res, 401, { error: { message: "Unauthorized", code: 2006 } });
    if (req.method !== "GET" || url.pathname !== "/oncalls") return json(res, 404, { error: { message: "Not Found", code: 2100 } });
    const scheduleIds = url.searchParams.getAll("schedule_ids[]");
    const expand = url.searchParams.getAll("include[]").includes("users");
    const oncalls = [...rosters]
      .filter(([id]) => scheduleIds.length === 0 || scheduleIds.includes(id))
      .flatMap(([id, shifts]) =>
        shifts.map((shift, i) => {
          const userId = `PU${Buffer.from(shift.email).toString("hex").slice(0, 6).toUpperCase()}`;
          const reference = {
            id: userId,
            type: "user_reference",
            summary: shift.email.split("@")[0],
            self: `https://api.pagerduty.com/users/${userId}`,
            html_url: `https://example.pagerduty.com/users/${userId}`,
          };
          return {
            escalation_policy: {
              id: "PEP0001",
              type: "escalation_policy_reference",
              summary: "Payments",
              self: "https://api.pagerduty.com/escalation_policies/PEP0001",
            },
            escalation_level: i + 1,
            schedule: {
              id,
              type: "schedule_reference",
              summary: `Schedule ${id}`,
              self: `https://api.pagerduty.com/schedules/${id}`,
              html_url: `https://example.pagerduty.com/schedules/${id}`,
            },
            user: expand ? { ...reference, type: "user", name: reference.summary, email: shift.email, time_zone: "UTC", role: "user" } : reference,
            start: shift.start,
            end: shift.end,
          };
        }),
      );
    json(res, 200, { oncalls, limit: Number(url.searchParams.get("limit") ?? 25), offset: 0, more: false, total: null }, "application/json; charset=utf-8");
  });
  return {
    ...server,
    requests: rec.requests,
    rateLimit: rec.rateLimit,
    setDown: rec.setDown,
    onNextCall: rec.onNextCall,
    roster: (schedule: string, shifts: Shift[]) => rosters.set(schedule, shifts),
  };
}

export function opsgenieFake(key: string) {
  const rosters = new Map<string, { id: string; name: string; emails: string[] }>();
  const rec = recorder();
  const meta = () => ({ took: 0.012, requestId: randomUUID() });
  const server = serve((req, res) => {
    if (rec.intercept(req, res, { message: "You are making too many requests! To avoid errors, we recommend you limit requests.", ...meta() })) return;
    const url = new URL(req.url ?? "/", "http://opsgenie.invalid");
    if (req.headers.authorization !== `GenieKey ${key}`) return json(res, 401, { message: "Could not authenticate", ...meta() });
    const match = /^\/v2\/schedules\/([^/]+)\/on-calls$/.exec(url.pathname);
    if (req.method !== "GET" || !match) return json(res, 404, { message: "Requested resource is not found", ...meta() });
    const identifier = decodeURIComponent(match[1]!);
    const byName = url.searchParams.get("scheduleIdentifierType") === "name";
    const schedule = [...rosters.values()].find((s) => (byName ? s.name === identifier : s.id === identifier));
    if (!schedule) return json(res, 404, { message: `Schedule with identifier [${identifier}] doesn't exist`, ...meta() });
    const _parent = { id: schedule.id, name: schedule.name, enabled: true };
    if (url.searchParams.get("flat") === "true") return json(res, 200, { data: { _parent, onCallRecipients: schedule.emails }, ...meta() });
    json(res, 200, { data: { _parent, onCallParticipants: schedule.emails.map((email) => ({ id: randomUUID(), name: email, type: "user" })) }, ...meta() });
  });
  return {
    ...server,
    requests: rec.requests,
    rateLimit: rec.rateLimit,
    setDown: rec.setDown,
    roster: (name: string, emails: string[]) => rosters.set(name, { id: rosters.get(name)?.id ?? randomUUID(), name, emails }),
  };
}
