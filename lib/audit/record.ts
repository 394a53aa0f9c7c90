import type { ActorType, Prisma, RequestStatus } from "@prisma/client";
import type { Tx } from "../db";
import { policy } from "../policy/current";
import { chainHash, type ChainedContent } from "./chain";
import { auditContext } from "./context";

/**
 * Who caused an event: a person in the portal, Latchkey itself (worker), or an identity
 * acting through an API token (personal or service), named by the token's id.
 */
export interface Actor {
  type: ActorType;
  id?: string;
  email?: string;
  tokenId?: string;
}

export const SYSTEM: Actor = { type: "system", email: "latchkey" };

export interface AuditInput {
  actor: Actor;
  action: string;
  requestId?: string;
  fromStatus?: RequestStatus | null;
  toStatus?: RequestStatus | null;
  data?: Prisma.InputJsonObject;
}

/** The free text of an event (justifications, comments, reasons), for text search. */
export function noteOf(data: Record<string, unknown>): string | null {
  const parts = ["justification", "comment", "reason", "breakGlassReason"].map((k) => data[k]).filter((v): v is string => typeof v === "string" && v.length > 0);
  return parts.length ? parts.join("\n") : null;
}

/**
 * Appends one audit event to the chain. It takes a transaction on purpose: the event
 * commits with the state change it describes, or neither does (if the event cannot be
 * written, the change fails too). The chain head is locked until commit, so events join
 * the chain one at a time, in commit order. Never pass secrets in `data`.
 */
export async function recordEvent(tx: Tx, event: AuditInput): Promise<void> {
  const context = auditContext();
  // The time comes from the database clock once the head is locked, so times rise with the chain (history turns dates into id ranges).
  const [head] = await tx.$queryRaw<{ lastSeq: bigint; lastHash: string; now: Date }[]>`SELECT "lastSeq", "lastHash", clock_timestamp() AS now FROM "AuditChainHead" WHERE id = 1 FOR UPDATE`;
  if (!head) throw new Error("The audit chain has no head row: the database was not migrated.");
  const request = event.requestId ? await tx.accessRequest.findUnique({ where: { id: event.requestId }, select: { workflowId: true, targetId: true } }) : null;
  const data = (event.actor.tokenId ? { ...event.data, tokenId: event.actor.tokenId } : (event.data ?? {})) as Record<string, unknown>;
  const content: ChainedContent = {
    seq: head.lastSeq + 1n,
    occurredAt: head.now,
    actorType: event.actor.type,
    actorId: event.actor.id ?? null,
    actorEmail: event.actor.email ?? null,
    action: event.action,
    requestId: event.requestId ?? null,
    fromStatus: event.fromStatus ?? null,
    toStatus: event.toStatus ?? null,
    // As stored: JSON without undefined members, so the hash is over what is read back.
    data: JSON.parse(JSON.stringify(data)),
    ip: context.ip ?? null,
    userAgent: context.userAgent ?? null,
    route: context.route ?? null,
    workflowId: request?.workflowId ?? null,
    targetId: request?.targetId ?? null,
    environment: request ? (policy().targets[request.targetId]?.environment ?? null) : null,
    note: noteOf(data),
  };
  const hash = chainHash(head.lastHash, content);
  await tx.auditEvent.create({ data: { ...(content as Prisma.AuditEventUncheckedCreateInput), prevHash: head.lastHash, hash } });
  await tx.$executeRaw`UPDATE "AuditChainHead" SET "lastSeq" = ${content.seq as bigint}, "lastHash" = ${hash} WHERE id = 1`;
}
