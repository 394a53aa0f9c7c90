import "server-only";
import { db } from "../db";
import { policy } from "../policy/current";
import { isStorableText } from "../text";

/** Everything one identity requested, decided and held: the auditor's per-person view. */
export async function personActivity(email: string, take = 200) {
  // An address PostgreSQL cannot even compare (NUL, broken Unicode) belongs to nobody.
  if (!isStorableText(email) || email.length > 320) return null;
  const user = await db.user.findUnique({
    where: { email },
    select: { id: true, email: true, name: true, kind: true, groups: true, roles: true, lastSignInAt: true, createdAt: true, active: true },
  });
  if (!user) return null;
  const targets = policy().targets;
  const title = (id: string) => targets[id]?.title ?? id;
  const [requested, decided, events, directory] = await Promise.all([
    db.accessRequest.findMany({
      where: { requesterId: user.id },
      orderBy: { createdAt: "desc" },
      take,
      select: {
        id: true,
        workflowId: true,
        targetId: true,
        status: true,
        justification: true,
        createdAt: true,
        activatedAt: true,
        endedAt: true,
        expiresAt: true,
        breakGlass: true,
        autoApprovedBy: true,
        decisions: { select: { decision: true, approver: { select: { email: true } } }, orderBy: { createdAt: "asc" } },
      },
    }),
    db.approval.findMany({
      where: { approverId: user.id },
      orderBy: { createdAt: "desc" },
      take,
      select: {
        decision: true,
        comment: true,
        createdAt: true,
        request: { select: { id: true, workflowId: true, targetId: true, status: true, requester: { select: { email: true } } } },
      },
    }),
    db.auditEvent.count({ where: { actorEmail: email } }),
    // What the directory (sign-in, SCIM, an admin's offboarding) changed about them, shown beside their grants.
    db.auditEvent.findMany({
      where: { action: "user.directory_changed", data: { path: ["userId"], equals: user.id } },
      orderBy: { id: "desc" },
      take,
      select: { id: true, occurredAt: true, actorEmail: true, data: true },
    }),
  ]);
  const heldIds = requested.filter((r) => r.activatedAt && r.status === "revoked").map((r) => r.id);
  const endings = heldIds.length
    ? await db.auditEvent.findMany({ where: { requestId: { in: heldIds }, action: "grant.revoked" }, select: { requestId: true, data: true } })
    : [];
  const endedBecause = new Map(endings.map((e) => [e.requestId!, String((e.data as { reason?: unknown }).reason ?? "")]));
  const directoryChanges = directory.map((e) => {
    const d = e.data as { source?: string; added?: string[]; removed?: string[]; deactivated?: boolean; reactivated?: boolean; reason?: string };
    return {
      id: String(e.id),
      occurredAt: e.occurredAt,
      by: e.actorEmail,
      source: d.source ?? "",
      added: d.added ?? [],
      removed: d.removed ?? [],
      deactivated: Boolean(d.deactivated),
      reactivated: Boolean(d.reactivated),
      reason: d.reason ?? "",
    };
  });
  return {
    user,
    events,
    requested: requested.map((r) => ({ ...r, targetTitle: title(r.targetId) })),
    held: requested.filter((r) => r.activatedAt).map((r) => ({ ...r, targetTitle: title(r.targetId), endedBecause: endedBecause.get(r.id) ?? null })),
    directoryChanges,
    decided: decided.map((d) => ({ ...d, request: { ...d.request, targetTitle: title(d.request.targetId) } })),
  };
}
