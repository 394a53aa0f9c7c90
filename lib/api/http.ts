import "server-only";
import { z } from "zod";
import { contextOf, withAuditContext } from "../audit/context";
import { authenticate } from "../authz/caller";
import { timed } from "../observability/metrics";
import { requestIdFrom, withHttpRequestId } from "../observability/request-context";
import { databaseUnavailableMessage, DomainError, fieldErrorsOf, isDatabaseUnavailable } from "../errors";
import { logger } from "../log";
import { MAX_BODY_BYTES } from "../http/plain";
import { problem } from "../http/problem";
import { hasUnsafeText, UNSAFE_TEXT } from "../text";
import type { Principal } from "../policy/evaluate";
import type { Scope } from "../identity/tokens";

/**
 * The one wrapper for /api/v1 routes, as safeAction is for server actions: authenticate
 * the bearer token, check its scope, read and validate the JSON body, run one lib/
 * function, and answer in one error format, RFC 9457 problem details with Latchkey's
 * `code` as an extension member. Known failures keep their message; anything else is
 * logged with context and answered generically, never with a stack trace. Every answer
 * after the token check carries the token's RateLimit-* headers.
 */

const STATUS: Record<DomainError["code"], number> = { invalid: 400, unauthenticated: 401, forbidden: 403, not_found: 404, conflict: 409 };

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
