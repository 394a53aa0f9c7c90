/**
 * The id of the HTTP request being served, so that log lines and audit events written
 * while serving it can be matched to it. middleware.ts gives every request one (a valid
 * incoming X-Request-Id is kept, else a new UUID) and answers with it; route handlers and
 * server actions read it from the request headers and run inside `withHttpRequestId`.
 */
import { randomUUID } from "node:crypto";
import { callContext, withCallContext } from "./call-context";
import { REQUEST_ID_PATTERN } from "./request-id";

/** The request's own id: a valid incoming X-Request-Id (set by middleware.ts or a proxy in front), else a new one. */
export function requestIdFrom(headers: { get(name: string): string | null }): string {
  const given = headers.get("x-request-id");
  return given && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
}

export function withHttpRequestId<T>(id: string | null | undefined, run: () => T): T {
  return id && REQUEST_ID_PATTERN.test(id) ? withCallContext("httpRequestId", id, run) : run();
}

export function currentHttpRequestId(): string | undefined {
  return callContext("httpRequestId");
}
