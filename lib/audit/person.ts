import "server-only";
import { db } from "../db";
import { policy } from "../policy/current";
import { isStorableText } from "../text";

/** Everything one identity requested, decided and held: the auditor's per-person view. */
export async function personActivity(email: string, take = 200) {
  // An address PostgreSQL cannot even compare (NUL, broken Unicode) belongs to nobody.
  if (!isStorableText(email) || email.length > 320) return null;
  const user = await db.user.findUnique({ where: { email }, select: { id: true, email: true, name: true, kind: true, groups: true, roles: true, lastSignInAt: true, createdAt: true } });
  if (!user) return null;
  const targets = policy().targets;
  const title = (id: string) => targets[id]?.title ?? id;
  const [requested, decided, events] = await Promise.all([
    db.accessRequest.findMany({
      where: { requesterId: user.id },
      orderBy: { createdAt: "desc" },
      take,
      select: {
        id: true, workflowId: true, targetId: true, status: true, justification: true, createdAt: true, activatedAt: true, endedAt: true, expiresAt: true, breakGlass: true, autoApprovedBy: true,
        decisions: { select: { decision: true, approver: { select: { email: true } } }, orderBy: { createdAt: "asc" } },
      },
    }),
    db.approval.findMany({
      where: { approverId: user.id },
      orderBy: { createdAt: "desc" },
      take,
      select: { decision: true, comment: true, createdAt: true, request: { select: { id: true, workflowId: true, targetId: true, status: true, requester: { select: { email: true } } } } },
    }),
    db.auditEvent.count({ where: { actorEmail: email } }),
  ]);
  return {
    user,
    events,
    requested: requested.map((r) => ({ ...r, targetTitle: title(r.targetId) })),
    held: requested.filter((r) => r.activatedAt).map((r) => ({ ...r, targetTitle: title(r.targetId) })),
    decided: decided.map((d) => ({ ...d, request: { ...d.request, targetTitle: title(d.request.targetId) } })),
  };
}
