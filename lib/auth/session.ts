import "server-only";
import { getServerSession } from "next-auth";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { cache } from "react";
import { contextOf, withAuditContext } from "../audit/context";
import { env } from "../env";
import type { Principal } from "../policy/evaluate";
import type { Role } from "../policy/schema";
import { authOptions } from "./options";
import { principalFromProxy, proxySettings, type ProxySignIn } from "./trusted-proxy";

/** Behind an identity-aware proxy every request carries its own assertion; it is checked once per request. */
const proxySignIn = cache(async (): Promise<ProxySignIn> => {
  const h = await headers();
  return withAuditContext(contextOf(h, "auth:trusted-proxy"), () => principalFromProxy(h));
});

/** The signed-in person, or null. Roles come from the database session (or the proxy's verified assertion), never from the client. */
export async function currentPrincipal(): Promise<Principal | null> {
  if (env().LATCHKEY_AUTH_MODE === "trusted-proxy") {
    const outcome = await proxySignIn();
    return outcome.ok ? outcome.principal : null;
  }
  const session = await getServerSession(authOptions());
  if (!session?.user?.id) return null;
  const { id, email, groups, roles } = session.user;
  return { id, email, groups, roles };
}

/**
 * For the sign-in page behind a proxy: which proxy signs people in, and why its assertion
 * was refused (null when it was accepted). Null when Latchkey signs people in itself.
 */
export async function proxySignInStatus(): Promise<{ proxyName: string; problem: string | null } | null> {
  if (env().LATCHKEY_AUTH_MODE !== "trusted-proxy") return null;
  const outcome = await proxySignIn();
  return { proxyName: proxySettings().name, problem: outcome.ok ? null : outcome.reason };
}

/** For pages: the signed-in person, or a redirect to sign-in (which, behind a proxy, says what went wrong). */
export async function requirePrincipal(): Promise<Principal> {
  const who = await currentPrincipal();
  if (!who) {
    const path = (await headers()).get("x-latchkey-path");
    redirect(path && path.startsWith("/") && !path.startsWith("//") ? `/signin?callbackUrl=${encodeURIComponent(path)}` : "/signin");
  }
  return who;
}

export function hasRole(who: Principal, ...roles: Role[]): boolean {
  return roles.some((r) => who.roles.includes(r));
}
