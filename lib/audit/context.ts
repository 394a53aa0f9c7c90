import { callContext, withCallContext } from "../observability/call-context";
import { currentHttpRequestId } from "../observability/request-context";

/** Where the events of one request, action or job come from; recorded with each audit event. */
export interface AuditContext {
  ip?: string;
  userAgent?: string;
  /** The server action, API route or worker job, e.g. "action:request.decide", "POST /api/v1/requests". */
  route?: string;
  /** The HTTP request's id (X-Request-Id), to match the event with the request's log lines. */
  httpRequestId?: string;
}

export function withAuditContext<T>(context: AuditContext, work: () => Promise<T>): Promise<T> {
  return withCallContext("audit", context, work);
}

export function auditContext(): AuditContext {
  const context = callContext("audit") ?? {};
  const httpRequestId = context.httpRequestId ?? currentHttpRequestId();
  return httpRequestId ? { ...context, httpRequestId } : context;
}

/** The last X-Forwarded-For hop: the address the proxy nearest to Latchkey saw. */
export function nearestHop(headers: { get(name: string): string | null }): string | undefined {
  return (
    headers
      .get("x-forwarded-for")
      ?.split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .at(-1) || undefined
  );
}

/**
 * The context of an HTTP request: the address the proxy nearest to Latchkey saw (the last
 * X-Forwarded-For hop; earlier hops are the client's to write) and the user agent.
 */
export function contextOf(headers: Headers, route: string): AuditContext {
  return {
    ip: nearestHop(headers),
    userAgent: headers.get("user-agent")?.slice(0, 400) || undefined,
    route,
  };
}
