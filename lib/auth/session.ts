import "server-only";
import { getServerSession } from "next-auth";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import type { Principal } from "../policy/evaluate";
import type { Role } from "../policy/schema";
import { authOptions } from "./options";

/** The signed-in person, or null. Roles come from the database session, never from the client. */
export async function currentPrincipal(): Promise<Principal | null> {
  const session = await getServerSession(authOptions());
  if (!session?.user?.id) return null;
  const { id, email, groups, roles } = session.user;
  return { id, email, groups, roles };
}

/** For pages: the signed-in person, or a redirect to sign-in. */
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
