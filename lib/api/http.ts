import "server-only";
import { z } from "zod";
import { contextOf, nearestHop, withAuditContext } from "../audit/context";
import { timed } from "../observability/metrics";
import { requestIdFrom, withHttpRequestId } from "../observability/request-context";
import { env } from "../env";
import { databaseUnavailableMessage, DomainError, fieldErrorsOf, isDatabaseUnavailable } from "../errors";
import { logger } from "../log";
import { bearerToken, MAX_BODY_BYTES, toResponse, type HeaderSource, type PlainAnswer } from "../http/plain";
import { hasUnsafeText, UNSAFE_TEXT } from "../text";
import { limitAddress, rateLimit, type RateDecision } from "../security/rate-limit";
import type { Principal } from "../policy/evaluate";
import { authenticateToken, type Scope } from "./tokens";

/**
 * The one wrapper for /api/v1 routes, as safeAction is for server actions: authenticate
 * the bearer token, check its scope, read and validate the JSON body, run one lib/
 * function, and answer in one error format, RFC 9457 problem details with Latchkey's
 * `code` as an extension member. Known failures keep their message; anything else is
 * logged with context and answered generically, never with a stack trace. Every answer
 * after the token check carries the token's RateLimit-* headers.
 */

export { MAX_BODY_BYTES };

const STATUS: Record<DomainError["code"], number> = { invalid: 400, unauthenticated: 401, forbidden: 403, not_found: 404, conflict: 409 };

/** Short, stable titles by code (RFC 9457 `title`); `detail` says what happened this time. */
const TITLES: Record<string, string> = {
  invalid: "Invalid input",
  invalid_json: "Body is not JSON",
  invalid_text: "Text PostgreSQL cannot store",
  invalid_request: "Invalid request",
  unauthenticated: "Not authenticated",
  forbidden: "Not allowed",
  insufficient_scope: "Token lacks the scope",
  not_found: "Not found",
  conflict: "Conflict",
  idempotency_key_reused: "Idempotency-Key reused with another body",
  idempotency_key_in_use: "Idempotency-Key in use",
  unsupported_media_type: "Unsupported media type",
  too_large: "Body too large",
  batch_refused: "JSON-RPC batch refused",
  rate_limited: "Too many requests",
  unavailable: "Service unavailable",
  internal: "Internal error",
};

/** The problem type URI of a code: stable, so clients may switch on it as on `code`. */
export const problemType = (code: string) => `urn:latchkey:problem:${code}`;

/** The one error format of the API (RFC 9457), as plain data (the lean listener writes it as is). */
export function problemAnswer(
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): PlainAnswer {
  const body = { type: problemType(code), title: TITLES[code] ?? code, status, detail: message, code, ...extra };
  return { status, headers: { "content-type": "application/problem+json", "cache-control": "no-store", ...headers }, body: JSON.stringify(body) };
}

export function problem(status: number, code: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return toResponse(problemAnswer(status, code, message, extra, headers));
}

/** A refusal a route throws that has no DomainError code of its own (e.g. 422 for a reused Idempotency-Key). */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** What a route answers when it needs more than 200 and a JSON body: a status and headers (Location, Link). */
export class ApiAnswer {
  constructor(
    readonly data: unknown,
    readonly init: { status?: number; headers?: Record<string, string> } = {},
  ) {}
}

/** The token's budget (draft-ietf-httpapi-ratelimit-headers, as separate fields). */
function rateHeaders(decision: RateDecision): Record<string, string> {
  return { "ratelimit-limit": String(decision.limit), "ratelimit-remaining": String(decision.remaining), "ratelimit-reset": String(decision.retryAfter) };
}

/**
 * The caller's address for a token's "last used from": the same hop as the audit trail's
 * (the last X-Forwarded-For entry, written by the proxy nearest to Latchkey). Earlier
 * entries are the caller's to write, so they would let a token's user choose what is shown.
 */
export function clientAddress(request: { headers: HeaderSource }): string | undefined {
  return nearestHop(request.headers);
}

function bearerOf(request: { headers: HeaderSource }): string | null {
  return bearerToken(request.headers.get("authorization"));
}

/** Authenticates an API token from the Authorization header: the principal, or the 401 to answer. */
export async function authenticate(request: { headers: HeaderSource }): Promise<{ who: Principal; rate: Record<string, string> } | { refusal: Response }> {
  const limits = env();
  const byAddress = await rateLimit(`api:addr:${limitAddress(request.headers)}`, limits.LATCHKEY_RATE_LIMIT_ADDRESS);
  if (!byAddress.ok) return { refusal: tooMany(byAddress, "this address") };
  const bearer = bearerOf(request);
  const challenge = { "www-authenticate": 'Bearer realm="latchkey"' };
  if (!bearer) return { refusal: problem(401, "unauthenticated", "Send an API token: Authorization: Bearer <token>.", {}, challenge) };
  const result = await authenticateToken(bearer, clientAddress(request));
  if (!result.ok)
    return { refusal: problem(401, "unauthenticated", result.reason, {}, { "www-authenticate": 'Bearer realm="latchkey", error="invalid_token"' }) };
  const byToken = await rateLimit(`api:token:${result.who.via!.tokenId}`, limits.LATCHKEY_RATE_LIMIT_TOKEN);
  if (!byToken.ok) return { refusal: tooMany(byToken, "this token") };
  return { who: result.who, rate: rateHeaders(byToken) };
}

function tooMany(decision: RateDecision, what: string): Response {
  const retryAfter = decision.retryAfter;
  return problem(
    429,
    "rate_limited",
    `Too many requests from ${what}; try again in ${retryAfter} s.`,
    {},
    { "retry-after": String(retryAfter), ...rateHeaders(decision) },
  );
}

async function readJson(request: Request): Promise<{ body: unknown } | { refusal: Response }> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) return { refusal: problem(415, "unsupported_media_type", "Send the body as application/json.") };
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY_BYTES) return { refusal: problem(413, "too_large", `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`) };
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) return { refusal: problem(413, "too_large", `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`) };
  let body: unknown;
  try {
    body = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    return { refusal: problem(400, "invalid_json", "The body is not valid JSON.") };
  }
  if (hasUnsafeText(body)) return { refusal: problem(400, "invalid_text", UNSAFE_TEXT) };
  return { body };
}

export function fieldErrors(error: z.ZodError): Record<string, string> {
  return fieldErrorsOf(error.issues, { root: "body", nested: true });
}

type Params = Record<string, string>;

function withHeaders(response: Response, headers: Record<string, string>): Response {
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  return response;
}

export function apiRoute<S extends z.ZodType = z.ZodUndefined>(definition: {
  name: string;
  scope: Scope;
  body?: S;
  run: (who: Principal, input: { body: z.infer<S>; params: Params; request: Request }) => Promise<unknown>;
}) {
  // Each call gets a request id (a proxy's valid X-Request-Id, or a new one) for its logs, its audit events and its answer.
  const handler = async (request: Request, context: { params: Promise<Params> }): Promise<Response> => {
    const id = requestIdFrom(request.headers);
    const response = await withHttpRequestId(id, () =>
      timed(
        definition.name,
        request.method,
        () => guarded(request, context),
        (r) => r.status,
      ),
    );
    response.headers.set("x-request-id", id);
    return response;
  };
  const guarded = async (request: Request, context: { params: Promise<Params> }): Promise<Response> => {
    try {
      return await handle(request, context);
    } catch (error) {
      if (isDatabaseUnavailable(error)) return problem(503, "unavailable", databaseUnavailableMessage(error), {}, { "retry-after": "2" });
      logger("api").error("unexpected failure", { route: definition.name, error });
      return problem(500, "internal", "Something went wrong on our side. Nothing was changed; try again, and tell the platform team if it keeps happening.");
    }
  };
  const handle = async (request: Request, context: { params: Promise<Params> }): Promise<Response> => {
    // Path and query parameters reach queries: text PostgreSQL cannot compare is refused before anything runs.
    const params = await context.params;
    if (hasUnsafeText(params) || hasUnsafeText([...new URL(request.url).searchParams].flat())) return problem(400, "invalid_text", UNSAFE_TEXT);
    const auth = await authenticate(request);
    if ("refusal" in auth) return auth.refusal;
    const { who, rate } = auth;
    if (!who.via?.scopes.includes(definition.scope)) {
      return problem(403, "insufficient_scope", `This token lacks the ${definition.scope} scope.`, { scope: definition.scope }, rate);
    }
    let body: unknown = undefined;
    if (definition.body) {
      const read = await readJson(request);
      if ("refusal" in read) return withHeaders(read.refusal, rate);
      const parsed = definition.body.safeParse(read.body);
      if (!parsed.success) return problem(400, "invalid", "Some fields need attention.", { fields: fieldErrors(parsed.error) }, rate);
      body = parsed.data;
    }
    try {
      const route = `${request.method} ${new URL(request.url).pathname}`;
      const result = await withAuditContext(contextOf(request.headers, route), () => definition.run(who, { body: body as z.infer<S>, params, request }));
      const answer = result instanceof ApiAnswer ? result : new ApiAnswer(result);
      return Response.json(answer.data, { status: answer.init.status ?? 200, headers: { "cache-control": "no-store", ...rate, ...answer.init.headers } });
    } catch (error) {
      if (error instanceof DomainError) {
        return problem(STATUS[error.code], error.code, error.message, error.fieldErrors ? { fields: error.fieldErrors } : {}, rate);
      }
      if (error instanceof ApiProblem) return problem(error.status, error.code, error.message, {}, { ...rate, ...error.headers });
      throw error;
    }
  };
  // The scope travels with the handler, so a test can hold it against the OpenAPI document.
  return Object.assign(handler, { scope: definition.scope });
}
