import "server-only";
import { nearestHop } from "../audit/context";
import { env } from "../env";
import { bearerToken, type HeaderSource } from "../http/plain";
import { problem } from "../http/problem";
import { authenticateToken } from "../identity/tokens";
import type { Principal } from "../policy/evaluate";
import { limitAddress, rateLimit, type RateDecision } from "../security/rate-limit";

/**
 * Who is calling with an API token, for every door that takes one (the /api/v1 wrapper, MCP,
 * introspection): the address's and the token's rate limits, the bearer token, and the
 * identity it speaks for, or the problem answer (401 or 429) that refuses the call.
 */

/** The token's budget (draft-ietf-httpapi-ratelimit-headers, as separate fields). */
function rateHeaders(decision: RateDecision): Record<string, string> {
  return { "ratelimit-limit": String(decision.limit), "ratelimit-remaining": String(decision.remaining), "ratelimit-reset": String(decision.retryAfter) };
}

/**
 * The caller's address for a token's "last used from": the same hop as the audit trail's
 * (the last X-Forwarded-For entry, written by the proxy nearest to Latchkey). Earlier
 * entries are the caller's to write, so they would let a token's user choose what is shown.
 */
function clientAddress(request: { headers: HeaderSource }): string | undefined {
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
