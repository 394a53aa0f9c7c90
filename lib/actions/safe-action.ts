import "server-only";
import { headers } from "next/headers";
import type { z } from "zod";
import { contextOf, withAuditContext, type AuditContext } from "../audit/context";
import { currentPrincipal } from "../auth/session";
import { databaseUnavailableMessage, DomainError, fieldErrorsOf, isDatabaseUnavailable, type Result } from "../errors";
import { logger } from "../log";
import { timed } from "../observability/metrics";
import { withHttpRequestId } from "../observability/request-context";
import { hasUnsafeText, UNSAFE_TEXT } from "../text";
import type { Principal } from "../policy/evaluate";
import type { Role } from "../policy/schema";

/**
 * The one wrapper for server actions: authenticate, check the role, validate with zod,
 * run one lib/ function, and map its outcome. Known failures keep their message; anything
 * else is logged with context and reported generically.
 */
export function safeAction<S extends z.ZodType, T>(definition: {
  name: string;
  input: S;
  roles?: Role[];
  run: (who: Principal, input: z.infer<S>) => Promise<T>;
}): (raw: z.input<S>) => Promise<Result<T>> {
  return async (raw) => {
    const id = await incomingRequestId();
    return withHttpRequestId(id, () =>
      timed(
        `action:${definition.name}`,
        "POST",
        () => perform(raw),
        (r) => (r.ok ? 200 : (ACTION_STATUS[r.code] ?? 500)),
      ),
    );
  };
  async function perform(raw: z.input<S>): Promise<Result<T>> {
    const who = await currentPrincipal();
    if (!who) return { ok: false, code: "unauthenticated", error: "Your session has ended. Sign in again." };
    if (definition.roles && !definition.roles.some((r) => who.roles.includes(r))) {
      return { ok: false, code: "forbidden", error: `This needs the ${definition.roles.join(" or ")} role.` };
    }
    if (hasUnsafeText(raw)) return { ok: false, code: "invalid", error: UNSAFE_TEXT };
    const parsed = definition.input.safeParse(raw);
    if (!parsed.success) {
      return { ok: false, code: "invalid", error: "Some fields need attention.", fieldErrors: fieldErrorsOf(parsed.error.issues) };
    }
    try {
      return { ok: true, data: await withAuditContext(await requestContext(`action:${definition.name}`), () => definition.run(who, parsed.data)) };
    } catch (error) {
      return toFailure(error, { action: definition.name, user: who.email });
    }
  }
}

/** HTTP-like statuses for the duration histogram, so actions and API routes read alike. */
const ACTION_STATUS: Record<string, number> = { unauthenticated: 401, forbidden: 403, invalid: 400, not_found: 404, conflict: 409, internal: 500 };

/** The id middleware.ts gave this request (X-Request-Id); none outside a request (tests, scripts). */
async function incomingRequestId(): Promise<string | undefined> {
  try {
    return (await headers()).get("x-request-id") ?? undefined;
  } catch {
    return undefined;
  }
}

export function toFailure(error: unknown, context: Record<string, string>): Result<never> {
  if (error instanceof DomainError) {
    return { ok: false, code: error.code, error: error.message, fieldErrors: error.fieldErrors };
  }
  if (isDatabaseUnavailable(error)) return { ok: false, code: "internal", error: databaseUnavailableMessage(error) };
  logger("action").error("unexpected failure", { ...context, error });
  return {
    ok: false,
    code: "internal",
    error: "Something went wrong on our side. Nothing was changed; try again, and tell the platform team if it keeps happening.",
  };
}

/** Address, user agent and action name for the audit trail; empty outside a request (tests, scripts). */
async function requestContext(route: string): Promise<AuditContext> {
  try {
    return contextOf(await headers(), route);
  } catch {
    return { route };
  }
}
