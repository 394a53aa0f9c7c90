import "server-only";
import { actorOf } from "../audit/record";
import { db } from "../db";
import { conflict, forbidden, invalid, notFound } from "../errors";
import { policy } from "../policy/current";
import type { Principal } from "../policy/evaluate";
import { applyDirectoryChange, type DirectoryOutcome } from "./directory";

/**
 * Admin → Users offboarding: what ending a person's access will end, shown before it is
 * done, and doing it (deactivation plus every grant, pending request, session and API
 * token, through the same path as a directory change). An admin can reactivate a person
 * offboarded by mistake; what was ended stays ended.
 */

export interface OffboardingPreview {
  user: { id: string; email: string; name: string | null; active: boolean; groups: string[] };
  sessions: number;
  tokens: { id: string; name: string; scopes: string[] }[];
  grants: { id: string; targetTitle: string; workflowId: string; expiresAt: Date | null; breakGlass: boolean }[];
  pending: { id: string; targetTitle: string; workflowId: string; createdAt: Date }[];
}

export async function offboardingPreview(userId: string): Promise<OffboardingPreview | null> {
  const user = await db.user.findUnique({ where: { id: userId }, select: { id: true, email: true, name: true, active: true, groups: true, kind: true } });
  if (!user || user.kind !== "person") return null;
  const title = (id: string) => policy().targets[id]?.title ?? id;
  const [sessions, tokens, requests] = await Promise.all([
    db.session.count({ where: { userId, expires: { gt: new Date() } } }),
    db.apiToken.findMany({
      where: { userId, revokedAt: null, expiresAt: { gt: new Date() } },
      select: { id: true, name: true, scopes: true },
      orderBy: { createdAt: "asc" },
    }),
    db.accessRequest.findMany({
      where: { requesterId: userId, status: { in: ["active", "pending"] } },
      orderBy: { createdAt: "asc" },
      select: { id: true, status: true, targetId: true, workflowId: true, expiresAt: true, breakGlass: true, createdAt: true },
    }),
  ]);
  const { kind: _kind, ...person } = user;
  return {
    user: person,
    sessions,
    tokens,
    grants: requests
      .filter((r) => r.status === "active")
      .map((r) => ({ id: r.id, targetTitle: title(r.targetId), workflowId: r.workflowId, expiresAt: r.expiresAt, breakGlass: r.breakGlass })),
    pending: requests
      .filter((r) => r.status === "pending")
      .map((r) => ({ id: r.id, targetTitle: title(r.targetId), workflowId: r.workflowId, createdAt: r.createdAt })),
  };
}

async function personToChange(admin: Principal, userId: string) {
  if (admin.via || !admin.roles.includes("admin")) throw forbidden("Only an admin, signed in to the portal, can offboard people.");
  const user = await db.user.findUnique({ where: { id: userId }, select: { id: true, kind: true, active: true } });
  if (!user) throw notFound("User");
  if (user.kind !== "person") throw conflict("Service identities are managed under Admin → Service identities.");
  if (user.id === admin.id) throw forbidden("You cannot offboard or reactivate yourself; ask another admin.");
  return user;
}

/** Deactivates the person and ends everything they hold, each step audited with the admin and the reason. */
export async function offboard(admin: Principal, input: { userId: string; reason: string }): Promise<DirectoryOutcome> {
  const reason = input.reason.trim();
  if (reason.length < 3) throw invalid("Say why this person is offboarded.", { reason: "Say why this person is offboarded." });
  await personToChange(admin, input.userId);
  return applyDirectoryChange({ userId: input.userId, active: false, endAll: true, source: "admin", actor: actorOf(admin), reason });
}

/** Lets an offboarded person sign in again; their roles come from their next sign-in. */
export async function reactivate(admin: Principal, userId: string): Promise<void> {
  const user = await personToChange(admin, userId);
  if (user.active) throw conflict("This person is active already.");
  await applyDirectoryChange({ userId, active: true, source: "admin", actor: actorOf(admin) });
}
