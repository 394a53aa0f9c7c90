import "server-only";
/**
 * The one wrapper for /scim/v2 routes, as apiRoute is for /api/v1: authenticate the bearer
 * token, allow only a service token whose one scope is `scim`, read the body (SCIM's or
 * plain JSON content type), run one function, and answer in SCIM's shapes. Known refusals
 * keep their RFC 7644 status and scimType; anything else is logged and answered
 * generically, never with a stack trace.
 */
import { Prisma } from "@prisma/client";
import { contextOf, nearestHop, withAuditContext } from "../../audit/context";
import { authenticateToken } from "../tokens";
import { env } from "../../env";
import { bearerToken } from "../../http/plain";
import { databaseUnavailableMessage, DomainError, isDatabaseUnavailable } from "../../errors";
import { logger } from "../../log";
import type { Principal } from "../../policy/evaluate";
import { limitAddress, rateLimit } from "../../security/rate-limit";
import { invalidSyntax, ScimError, scimErrorResponse, scimJson } from "./errors";

export const MAX_SCIM_BODY_BYTES = 1024 * 1024;

const DOMAIN_STATUS: Record<DomainError["code"], number> = { invalid: 400, unauthenticated: 401, forbidden: 403, not_found: 404, conflict: 409 };
const CHALLENGE = 'Bearer realm="latchkey-scim"';

async function authenticate(request: Request): Promise<Principal> {
  const limits = env();
  const byAddress = await rateLimit(`scim:addr:${limitAddress(request.headers)}`, limits.LATCHKEY_RATE_LIMIT_ADDRESS);
  if (!byAddress.ok)
    throw new ScimError(429, `Too many requests from this address; try again in ${byAddress.retryAfter} s.`, "tooMany", {
      "retry-after": String(byAddress.retryAfter),
    });
  const bearer = bearerToken(request.headers.get("authorization"));
  if (!bearer) throw new ScimError(401, "Send the SCIM token: Authorization: Bearer <token>.", undefined, { "www-authenticate": CHALLENGE });
  const result = await authenticateToken(bearer, nearestHop(request.headers));
  if (!result.ok) throw new ScimError(401, result.reason, undefined, { "www-authenticate": `${CHALLENGE}, error="invalid_token"` });
  const via = result.who.via!;
  if (via.kind !== "service_token" || !via.scopes.includes("scim"))
    throw new ScimError(403, "This token lacks the scim scope; SCIM takes a service token made for the identity provider.", undefined, {
      "www-authenticate": `${CHALLENGE}, error="insufficient_scope", scope="scim"`,
    });
  const byToken = await rateLimit(`scim:token:${via.tokenId}`, limits.LATCHKEY_RATE_LIMIT_TOKEN);
  if (!byToken.ok)
    throw new ScimError(429, `Too many requests from this token; try again in ${byToken.retryAfter} s.`, "tooMany", {
      "retry-after": String(byToken.retryAfter),
    });
  return result.who;
}

async function readBody(request: Request): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/(scim\+)?json\s*(;|$)/i.test(type)) throw new ScimError(415, "Send the body as application/scim+json.");
  if (Number(request.headers.get("content-length") ?? 0) > MAX_SCIM_BODY_BYTES)
    throw new ScimError(413, `The body is larger than ${MAX_SCIM_BODY_BYTES / 1024} KiB.`);
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_SCIM_BODY_BYTES) throw new ScimError(413, `The body is larger than ${MAX_SCIM_BODY_BYTES / 1024} KiB.`);
  try {
    return JSON.parse(text);
  } catch {
    throw invalidSyntax("The body is not valid JSON.");
  }
}

type Params = Record<string, string>;
export interface ScimCall {
  body: unknown;
  params: Params;
  url: URL;
}

export function scimRoute(definition: { name: string; body?: boolean; status?: number; run: (who: Principal, call: ScimCall) => Promise<unknown> }) {
  return async (request: Request, context: { params: Promise<Params> }): Promise<Response> => {
    try {
      const who = await authenticate(request);
      const body = definition.body ? await readBody(request) : undefined;
      const params = await context.params;
      const url = new URL(request.url);
      const data = await withAuditContext(contextOf(request.headers, `${request.method} ${url.pathname}`), () => definition.run(who, { body, params, url }));
      const created = (data as { meta?: { location?: string } } | undefined)?.meta?.location;
      return scimJson(data === undefined ? 204 : (definition.status ?? 200), data, definition.status === 201 && created ? { location: created } : {});
    } catch (error) {
      return refusal(error, definition.name);
    }
  };
}

function refusal(error: unknown, route: string): Response {
  if (error instanceof ScimError) return scimErrorResponse(error);
  // A race the checks before the write could not see (two creates at once): still the RFC's answer.
  if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002")
    return scimErrorResponse(new ScimError(409, "That value is taken by another resource.", "uniqueness"));
  if (error instanceof DomainError) return scimErrorResponse(new ScimError(DOMAIN_STATUS[error.code], error.message));
  if (isDatabaseUnavailable(error)) return scimErrorResponse(new ScimError(503, databaseUnavailableMessage(error), undefined, { "retry-after": "2" }));
  logger("scim").error("unexpected failure", { route, error });
  return scimErrorResponse(new ScimError(500, "Something went wrong on our side. Try again, and tell the platform team if it keeps happening."));
}

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * Handlers for the methods a /scim/v2 route does not take, answering 405 in RFC 7644's error
 * shape with an Allow header: Next.js's own 405 has no body, which a SCIM client cannot read.
 * OPTIONS answers with the same Allow (Next.js's own would list every method exported, these
 * refusals included). A route exports the ones it lacks and OPTIONS:
 * `export const { PUT, PATCH, DELETE, OPTIONS } = scimMethodsNotAllowed("GET", "POST")`.
 */
export function scimMethodsNotAllowed(...allowed: Method[]): Record<Exclude<Method, "GET"> | "OPTIONS", () => Promise<Response>> {
  // Next.js answers HEAD from GET, and OPTIONS here.
  const allow = [...allowed, "HEAD", "OPTIONS"].join(", ");
  const refuse = async () => scimErrorResponse(new ScimError(405, `This endpoint takes ${allowed.join(", ")} only.`, undefined, { allow }));
  const options = async () => new Response(null, { status: 204, headers: { allow } });
  return { POST: refuse, PUT: refuse, PATCH: refuse, DELETE: refuse, OPTIONS: options };
}
