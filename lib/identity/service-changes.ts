import "server-only";
import type { ServiceIdentityChange } from "@prisma/client";
import { z } from "zod";
import { applyCreate, applyUpdate, checkGroups } from "./service-identities";
import { actorOf, recordEvent } from "../audit/record";
import { db, type Tx } from "../db";
import { conflict, forbidden, invalid, notFound } from "../errors";
import { sameParty, type Parties, type Principal } from "../policy/evaluate";
import { partiesOf } from "./parties";

/**
 * The second admin's decision on a change that would let a service identity approve. An
 * identity that can approve is an approver that answers to its owners, so making one is
 * itself under separation of duties: the admin who asked, anyone of his party and the
 * identity's owners cannot carry it out. The change row is locked while it is decided, and
 * the change, the decision and their audit events commit together.
 */

const proposalSchema = z.union([
  z.object({ description: z.string(), groups: z.array(z.string()), requestOnly: z.boolean(), ownerIds: z.array(z.string()) }),
  z.object({ groups: z.array(z.string()), requestOnly: z.boolean() }),
]);

// As the engine's: a busy database must not cut a decision short halfway.
const TX = { maxWait: 15_000, timeout: 30_000 } as const;

const decisionSchema = z.object({
  changeId: z.string().min(1).max(64),
  decision: z.enum(["approve", "reject"]),
  comment: z.string().trim().max(1000),
});

/** Why this person may not approve this change, or null when they may. Pure. */
export function serviceChangeRefusal(change: { requestedById: string; ownerIds: readonly string[] }, who: Principal, parties: Parties): string | null {
  if (who.via || !who.roles.includes("admin")) return "Only an admin, signed in to the portal, can approve changes to service identities.";
  if (who.id === change.requestedById) return "You asked for this change; another admin must approve it.";
  if (sameParty(parties, change.requestedById, who.id))
    return "You cannot approve this change: a service identity and its owners count as one party, and the admin who asked is in yours.";
  if (change.ownerIds.includes(who.id)) return "You own this service identity; an admin who does not own it must approve the change.";
  return null;
}

/** The owners a change would leave the identity with: the asking admin and named owners for a create, the present owners for an update. */
async function ownersAfter(tx: Tx, change: ServiceIdentityChange, proposal: z.infer<typeof proposalSchema>): Promise<string[]> {
  if ("ownerIds" in proposal) return [change.requestedById, ...proposal.ownerIds];
  const owners = await tx.serviceOwner.findMany({ where: { serviceId: change.serviceId ?? "" }, select: { ownerId: true } });
  return owners.map((o) => o.ownerId);
}

/**
 * Approves (carries out) or rejects a waiting change. The admin who asked may withdraw it
 * (it becomes cancelled) but never approve it.
 */
export async function decideServiceChange(who: Principal, raw: unknown): Promise<ServiceIdentityChange> {
  if (who.via || !who.roles.includes("admin")) throw forbidden("Only an admin, signed in to the portal, can decide on changes to service identities.");
  const parsed = decisionSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", { form: parsed.error.issues[0]!.message });
  const { changeId, decision, comment } = parsed.data;
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM "ServiceIdentityChange" WHERE id = ${changeId} FOR UPDATE`;
    const change = await tx.serviceIdentityChange.findUnique({ where: { id: changeId } });
    if (!change) throw notFound("Change");
    if (change.status !== "pending") throw conflict(`This change is already ${change.status}; there is nothing left to decide.`);
    const proposal = proposalSchema.parse(change.proposal);
    const actor = actorOf(who);
    const decided = { decidedById: who.id, decidedAt: new Date(), comment: comment || null };
    if (decision === "reject") {
      const status = who.id === change.requestedById ? "cancelled" : "rejected";
      // Withdrawing one's own change needs no reason; rejecting another admin's does.
      if (status === "rejected" && !comment) throw invalid("Say why you reject this change.", { comment: "Say why you reject this change." });
      await recordEvent(tx, { actor, action: `service_identity.change_${status}`, data: { changeId, name: change.name, comment } });
      return tx.serviceIdentityChange.update({ where: { id: changeId }, data: { status, ...decided } });
    }
    const refusal = serviceChangeRefusal(
      { requestedById: change.requestedById, ownerIds: await ownersAfter(tx, change, proposal) },
      who,
      await partiesOf(tx, [change.requestedById, who.id]),
    );
    if (refusal) throw forbidden(refusal);
    // The policy may have changed while the change waited.
    checkGroups(proposal.groups);
    await recordEvent(tx, {
      actor,
      action: "service_identity.change_approved",
      data: { changeId, name: change.name, requestedById: change.requestedById, comment },
    });
    let serviceId = change.serviceId;
    if ("ownerIds" in proposal) {
      serviceId = (await applyCreate(tx, actor, change.requestedById, change.name, proposal, changeId)).id;
    } else {
      const service = await tx.user.findUnique({ where: { id: change.serviceId ?? "" } });
      if (!service || service.kind !== "service") throw notFound("Service identity");
      await applyUpdate(tx, actor, service, proposal, changeId);
    }
    return tx.serviceIdentityChange.update({ where: { id: changeId }, data: { status: "approved", serviceId, ...decided } });
  }, TX);
}

/** Changes waiting for a second admin, oldest first, with who asked. */
export async function pendingServiceChanges() {
  const changes = await db.serviceIdentityChange.findMany({ where: { status: "pending" }, orderBy: { createdAt: "asc" }, take: 100 });
  const people = await db.user.findMany({ where: { id: { in: changes.map((c) => c.requestedById) } }, select: { id: true, email: true } });
  return changes.map((c) => {
    const proposal = proposalSchema.parse(c.proposal);
    return {
      id: c.id,
      kind: c.kind,
      name: c.name,
      groups: proposal.groups,
      requestOnly: proposal.requestOnly,
      requestedById: c.requestedById,
      requestedBy: people.find((p) => p.id === c.requestedById)?.email ?? c.requestedById,
      createdAt: c.createdAt,
    };
  });
}
