import "server-only";
import { currentPrincipal } from "../auth/session";
import { db } from "../db";
import type { Principal } from "../policy/evaluate";
import { contextOf, withAuditContext } from "../audit/context";
import { plainText } from "../http/plain";
import { actorOf, recordEvent } from "../audit/record";

/** A plain-text refusal for the auditor's download routes. */
export const refuse = (status: number, message: string): Response => plainText(status, message);

/** The signed-in auditor or admin, or the 401/403 to answer. */
export async function auditorOrRefusal(what: string): Promise<{ who: Principal } | { refusal: Response }> {
  const who = await currentPrincipal();
  if (!who) return { refusal: refuse(401, `Sign in to download ${what}.`) };
  if (!who.roles.includes("auditor") && !who.roles.includes("admin"))
    return { refusal: refuse(403, `${what[0]!.toUpperCase()}${what.slice(1)} is open to auditors and admins only.`) };
  return { who };
}

/** Records that someone downloaded part of the audit trail, before the download starts. */
export function recordDownload(request: Request, who: Principal, action: string, data: Record<string, unknown>): Promise<void> {
  const route = `GET ${new URL(request.url).pathname}`;
  return withAuditContext(contextOf(request.headers, route), () =>
    db.$transaction((tx) => recordEvent(tx, { actor: actorOf(who), action, data: data as never })),
  );
}
