import type { ActorType, Prisma, RequestStatus } from "@prisma/client";
import type { Tx } from "../db";
import type { Principal } from "../policy/evaluate";
import { policy } from "../policy/current";
import { currentKey } from "../credentials/keyring";
import { chainHash, type ChainedContent } from "./chain";
import { auditContext } from "./context";
import { auditBuffer, registerAuditFlusher, type Committed } from "./pending";

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

/** The actor a signed-in person or a token acting for an identity is recorded as. */
export function actorOf(who: Principal): Actor {
  if (who.via) return { type: who.via.kind, id: who.id, email: who.email, tokenId: who.via.tokenId };
  return { type: "human", id: who.id, email: who.email };
}

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
  const parts = ["justification", "comment", "reason", "breakGlassReason"]
    .map((k) => data[k])
    .filter((v): v is string => typeof v === "string" && v.length > 0);
  return parts.length ? parts.join("\n") : null;
}

interface Pending {
  event: AuditInput;
  context: ReturnType<typeof auditContext>;
}

/**
 * Records one audit event. It takes a transaction on purpose: the event commits with the
 * state change it describes, or neither does (if the event cannot be written, the change
 * fails too). Inside db.$transaction the event waits and joins the chain just before the
 * commit; elsewhere it joins at once. Never pass secrets in `data`.
 */
export async function recordEvent(tx: Tx, event: AuditInput): Promise<void> {
  const pending = auditBuffer(tx);
  const item: Pending = { event, context: auditContext() };
  if (pending) pending.push(item);
  else await appendEvents(tx, [item]);
}

/**
 * The workflow and target of requests seen lately, which every event about them carries.
 * Both are fixed when a request is made, so what is remembered never goes stale.
 */
const requestMeta = new Map<string, { workflowId: string; targetId: string }>();

export function rememberRequest(request: { id: string; workflowId: string; targetId: string }): void {
  if (requestMeta.has(request.id)) return;
  if (requestMeta.size >= 10_000) requestMeta.delete(requestMeta.keys().next().value!);
  requestMeta.set(request.id, { workflowId: request.workflowId, targetId: request.targetId });
}

/**
 * Appends events to the chain. The chain head is locked until commit, so events join one
 * transaction at a time, in commit order, with times from the database clock.
 */
async function appendEvents(tx: Tx, items: Pending[]): Promise<Committed[]> {
  // Read before the head is locked: every transaction that audits waits for that lock.
  const unknown = [...new Set(items.map((i) => i.event.requestId).filter((id): id is string => Boolean(id) && !requestMeta.has(id!)))];
  if (unknown.length)
    for (const r of await tx.accessRequest.findMany({ where: { id: { in: unknown } }, select: { id: true, workflowId: true, targetId: true } }))
      rememberRequest(r);
  const requests = requestMeta;
  // The time comes from the database clock once the head is locked, so times rise with the chain (history turns dates into id ranges).
  const [head] = await tx.$queryRaw<
    { lastSeq: bigint; lastHash: string; now: Date }[]
  >`SELECT "lastSeq", "lastHash", clock_timestamp() AS now FROM "AuditChainHead" WHERE id = 1 FOR UPDATE`;
  if (!head) throw new Error("The audit chain has no head row: the database was not migrated.");
  let seq = head.lastSeq;
  let prev = head.lastHash;
  const key = currentKey();
  const rows: Prisma.AuditEventCreateManyInput[] = [];
  for (const { event, context } of items) {
    seq += 1n;
    const request = event.requestId ? requests.get(event.requestId) : undefined;
    const data = (event.actor.tokenId ? { ...event.data, tokenId: event.actor.tokenId } : (event.data ?? {})) as Record<string, unknown>;
    const content: ChainedContent = {
      seq,
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
      httpRequestId: context.httpRequestId ?? null,
    };
    const hash = chainHash(prev, content, key);
    rows.push({ ...(content as Prisma.AuditEventCreateManyInput), prevHash: prev, hash, chainKeyId: key.id });
    prev = hash;
  }
  // One statement for the events and the head: the head's lock is held one round trip less. The
  // time is UTC, as Prisma stores it; a zone in the text is ignored by "timestamp(3)".
  const events = JSON.stringify(rows, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  await tx.$executeRaw`
    WITH appended AS (
      INSERT INTO "AuditEvent" (seq, "occurredAt", "actorType", "actorId", "actorEmail", action, "requestId", "fromStatus", "toStatus", data, ip, "userAgent", route, "workflowId", "targetId", environment, note, "httpRequestId", "prevHash", hash, "chainKeyId")
      SELECT seq, "occurredAt", "actorType", "actorId", "actorEmail", action, "requestId", "fromStatus", "toStatus", data, ip, "userAgent", route, "workflowId", "targetId", environment, note, "httpRequestId", "prevHash", hash, "chainKeyId"
      FROM jsonb_to_recordset(${events}::jsonb) AS e(seq bigint, "occurredAt" timestamp(3), "actorType" "ActorType", "actorId" text, "actorEmail" text, action text, "requestId" text, "fromStatus" "RequestStatus", "toStatus" "RequestStatus", data jsonb, ip text, "userAgent" text, route text, "workflowId" text, "targetId" text, environment text, note text, "httpRequestId" text, "prevHash" text, hash text, "chainKeyId" text)
      ORDER BY seq
    )
    UPDATE "AuditChainHead" SET "lastSeq" = ${seq}, "lastHash" = ${prev} WHERE id = 1`;
  return items.flatMap(({ event: e }): Committed[] => {
    if (e.requestId && e.fromStatus === "active" && e.toStatus !== "active") return [{ kind: "request", id: e.requestId }];
    if (e.action === "token.revoked" && typeof e.data?.tokenId === "string") return [{ kind: "token", id: e.data.tokenId }];
    if (e.action === "user.directory_changed" && typeof e.data?.userId === "string") return [{ kind: "user", id: e.data.userId }];
    return [];
  });
}

registerAuditFlusher((tx, events) => appendEvents(tx as Tx, events as Pending[]));
