import "server-only";
import { currentPrincipal } from "../auth/session";
import { databaseUnavailableMessage, DomainError, isDatabaseUnavailable } from "../errors";
import { logger } from "../log";
import { timed } from "../observability/metrics";
import { requestIdFrom, withHttpRequestId } from "../observability/request-context";
import type { Principal } from "../policy/evaluate";
import { hasUnsafeText, UNSAFE_TEXT } from "../text";

/**
 * The one way in for route handlers a signed-in page calls (not the token API): the
 * session is checked here, lib decides what this person may read, and known failures
 * become their HTTP status with a message; anything else is logged and answered generically.
 */
const log = logger("session-route");

/** `name` labels the route's metrics: a fixed name, never the path, so no caller can mint new series. */
export function sessionRoute<Params extends Record<string, string> = Record<string, never>>(
  name: string,
  run: (who: Principal, params: Params) => Promise<unknown>,
) {
  return async (request: Request, context: { params: Promise<Params> }): Promise<Response> => {
    const id = requestIdFrom(request.headers);
    const response = await withHttpRequestId(id, () =>
      timed(
        name,
        request.method,
        () => answer(context),
        (r) => r.status,
      ),
    );
    response.headers.set("x-request-id", id);
    return response;
  };
  async function answer(context: { params: Promise<Params> }): Promise<Response> {
    const headers = { "cache-control": "no-store" };
    const who = await currentPrincipal();
    if (!who) return Response.json({ error: "Sign in first." }, { status: 401, headers });
    try {
      const params = await context.params;
      // Text PostgreSQL cannot store (a NUL in an id) is refused here, as the token API refuses it, before any query.
      if (hasUnsafeText(params)) return Response.json({ error: UNSAFE_TEXT }, { status: 400, headers });
      return Response.json(await run(who, params), { headers });
    } catch (error) {
      if (error instanceof DomainError) {
        const status = { not_found: 404, forbidden: 403, conflict: 409, invalid: 400, unauthenticated: 401 }[error.code];
        return Response.json({ error: error.message }, { status, headers });
      }
      if (isDatabaseUnavailable(error)) return Response.json({ error: databaseUnavailableMessage(error) }, { status: 503, headers });
      log.error("session route failed", { error: (error as Error).message });
      return Response.json({ error: "Something went wrong; try again." }, { status: 500, headers });
    }
  }
}
