import type { ActorType, Prisma, RequestStatus } from "@prisma/client";
import type { Tx } from "../db";

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

/**
 * Appends one audit event. It takes a transaction on purpose: the event commits with the
 * state change it describes, or neither does. Never pass secrets in `data`.
 */
export async function recordEvent(tx: Tx, event: AuditInput): Promise<void> {
  await tx.auditEvent.create({
    data: {
      actorType: event.actor.type,
      actorId: event.actor.id ?? null,
      actorEmail: event.actor.email ?? null,
      action: event.action,
      requestId: event.requestId ?? null,
      fromStatus: event.fromStatus ?? null,
      toStatus: event.toStatus ?? null,
      data: event.actor.tokenId ? { ...event.data, tokenId: event.actor.tokenId } : (event.data ?? {}),
    },
  });
}
