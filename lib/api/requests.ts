import "server-only";
import { inboxFor, listMyRequests } from "../approvals/queries";
import type { Principal } from "../policy/evaluate";
import { ApiAnswer, ApiProblem } from "./http";
import { bindKey, claimKey, earlierUse, idempotencyOf, isKeyTaken, rememberAnswer } from "./idempotency";
import { pageAnswer, positionTime, readPage, type PageRequest } from "./pagination";
import { madeRequestDetail, requestDetail, requestSummary } from "./views";

/** The request routes' work: lists a page at a time, and creation with 201, Location and Idempotency-Key. */

const keyset = (page: PageRequest) => ({ take: page.limit + 1, after: page.after ? { createdAt: positionTime(page.after), id: page.after[1] } : null });
const position = (r: { createdAt: Date; id: string }): [string, string] => [r.createdAt.toISOString(), r.id];

/** This identity's requests, newest first, a page at a time. */
export async function requestsPage(who: Principal, request: Request): Promise<ApiAnswer> {
  const page = readPage(request);
  return pageAnswer(request, "requests", (await listMyRequests(who, keyset(page))).map(requestSummary), page, position);
}

/** Pending requests this identity could approve now, oldest first, a page at a time (none for a request-only identity). */
export async function inboxPage(who: Principal, request: Request): Promise<ApiAnswer> {
  const page = readPage(request);
  const rows = who.requestOnly ? [] : await inboxFor(who, keyset(page));
  return pageAnswer(request, "requests", rows.map(requestSummary), page, position);
}

const created = (data: { id: string }, replayed = false) =>
  new ApiAnswer(data, {
    status: 201,
    headers: { location: `/api/v1/requests/${encodeURIComponent(data.id)}`, ...(replayed ? { "idempotent-replayed": "true" } : {}) },
  });

/** Makes a request; with an Idempotency-Key, a retry with the same body gets the first answer and makes nothing new. */
export async function makeRequest(who: Principal, body: { workflowId: string; input: Record<string, unknown> }, request: Request): Promise<ApiAnswer> {
  const claim = idempotencyOf(who, request, body);
  if (!claim) return created(await madeRequestDetail(who, body.workflowId, body.input));
  const replay = async () => {
    const earlier = await earlierUse(claim);
    if (!earlier) return null;
    return created((earlier.response as { id: string } | null) ?? (await requestDetail(who, earlier.requestId)), true);
  };
  const first = await replay();
  if (first) return first;
  try {
    const data = await madeRequestDetail(who, body.workflowId, body.input, { before: (tx) => claimKey(tx, claim), after: (tx, r) => bindKey(tx, claim, r.id) });
    await rememberAnswer(claim, data);
    return created(data);
  } catch (error) {
    if (!isKeyTaken(error)) throw error;
    // Another call with this key committed while this one waited on it.
    const again = await replay();
    if (again) return again;
    throw new ApiProblem(409, "idempotency_key_in_use", "A call with this Idempotency-Key is still being made; retry in a moment.", { "retry-after": "1" });
  }
}
