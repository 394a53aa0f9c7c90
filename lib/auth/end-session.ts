import "server-only";
import { db } from "../db";
import { env } from "../env";
import { logger } from "../log";

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): signing out of Latchkey
 * alone would leave the identity provider's session alive, and one click would sign the
 * same person back in without a password. Where the provider publishes an
 * `end_session_endpoint`, sign-out continues there with the person's latest ID token as
 * the hint, and the provider sends them back to the sign-in page.
 */
const log = logger("auth");
const DISCOVERY_TTL_MS = 10 * 60_000;
let discovered: { issuer: string; endpoint: string | null; at: number } | undefined;

async function endSessionEndpoint(issuer: string): Promise<string | null> {
  if (discovered?.issuer === issuer && Date.now() - discovered.at < DISCOVERY_TTL_MS) return discovered.endpoint;
  try {
    const res = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`discovery answered ${res.status}`);
    const doc = (await res.json()) as { end_session_endpoint?: unknown };
    const endpoint = typeof doc.end_session_endpoint === "string" && /^https?:\/\//.test(doc.end_session_endpoint) ? doc.end_session_endpoint : null;
    discovered = { issuer, endpoint, at: Date.now() };
    return endpoint;
  } catch (error) {
    // Not cached: the next sign-out asks again. Latchkey's own session still ends.
    log.warn("the identity provider's end-session endpoint could not be discovered", { error: (error as Error).message });
    return null;
  }
}

/** Where to send this person's browser after their Latchkey session ends, or null to stay on the sign-in page. */
export async function endSessionUrl(userId: string): Promise<string | null> {
  const e = env();
  if (e.LATCHKEY_AUTH_MODE !== "oidc" || !e.OIDC_ISSUER) return null;
  const endpoint = await endSessionEndpoint(e.OIDC_ISSUER);
  if (!endpoint) return null;
  const account = await db.account.findFirst({ where: { userId, provider: "oidc" }, select: { id_token: true } });
  const url = new URL(endpoint);
  if (account?.id_token) url.searchParams.set("id_token_hint", account.id_token);
  if (e.OIDC_CLIENT_ID) url.searchParams.set("client_id", e.OIDC_CLIENT_ID);
  url.searchParams.set("post_logout_redirect_uri", `${e.NEXTAUTH_URL.replace(/\/$/, "")}/signin`);
  return url.toString();
}
