import type { ActorType, Prisma, RequestStatus } from "@prisma/client";
import type { Tx } from "../db";
import { join, raw, sql, sqlRows, sqlRunLast } from "../db/sql";
import type { Principal } from "../policy/evaluate";
import { policy } from "../policy/current";
import { currentKey } from "../credentials/keyring";
import { afterCommit, beforeCommit, isUnit, takeRiders } from "../db/after-commit";
import { changedHere, type ChangeKind } from "../db/changes";
import { logger } from "../log";
import { sealOf, type SealedContent } from "./chain";
import { wakeChainer } from "./chain-wake";
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

interface Pending {
  event: AuditInput;
  context: ReturnType<typeof auditContext>;
}

/** Events recorded in a transaction of db.$transaction, waiting to be written together just before it commits. */
const buffered = new WeakMap<object, Pending[]>();

/**
 * Ids and times for a transaction's events taken ahead by a statement it sends anyway (the
 * request's write, lib/approvals/rows.ts, writeRequestRow), so that writing the events needs
 * no statement to take them: the events use these first, in the order they were recorded.
 */
const takenAhead = new WeakMap<object, { id: bigint; now: Date }[]>();

/** Where a statement reads `idsAhead`'s columns back. */
export interface IdsAhead {
  auditIds?: (string | bigint)[];
  auditAt?: Date;
}

/**
 * Columns that take ids and a time for `tx`'s events ahead, for a statement of `tx` that
 * returns one row (null outside db.$transaction, where events are written at once): as many as
 * it has recorded and not yet been given, and at least one (a new request's event follows its
 * insert). Like the flush's own statement, nextval and the database's clock, taken together.
 * An id taken and not used is a gap in the ids, as a rolled-back transaction leaves; the chain's
 * places (`seq`) have none.
 */
export function idsAhead(tx: object): Prisma.Sql | null {
  if (!isUnit(tx)) return null;
  const wanted = Math.max((buffered.get(tx)?.length ?? 0) - (takenAhead.get(tx)?.length ?? 0), 1);
  return sql`ARRAY(SELECT nextval('"AuditEvent_id_seq"') FROM generate_series(1, ${wanted}::int)) AS "auditIds", clock_timestamp() AS "auditAt"`;
}

/** Keeps the ids and time a row of idsAhead's columns brought for `tx`'s events, and takes those columns off the row. */
export function keepIdsAhead<T extends IdsAhead>(tx: object, row: T): Omit<T, keyof IdsAhead> {
  const { auditIds, auditAt, ...rest } = row;
  if (auditIds && auditAt) {
    const kept = takenAhead.get(tx) ?? [];
    kept.push(...auditIds.map((id) => ({ id: BigInt(id), now: auditAt })));
    takenAhead.set(tx, kept);
  }
  return rest;
}

/**
 * Records one audit event. It takes a transaction on purpose: the event is written in it and
 * commits with the state change it describes, or neither does (if the event cannot be
 * written, the change fails too). The event is sealed as it is written (lib/audit/chain.ts)
 * and takes no lock: the chainer (lib/audit/chainer.ts) gives it its place in the chain
 * shortly after the commit. Never pass secrets in `data`.
 *
 * Inside db.$transaction the transaction's events are written together just before it
 * commits, in one statement that also carries the jobs it queued (lib/db/after-commit.ts),
 * with ids and times the request's write took for them (idsAhead) or, failing that, one more
 * statement takes; elsewhere at once.
 */
export async function recordEvent(tx: Tx, event: AuditInput): Promise<void> {
  const item: Pending = { event, context: auditContext() };
  const waiting = buffered.get(tx);
  if (waiting) {
    waiting.push(item);
    return;
  }
  const first = [item];
  const flush = async () => {
    buffered.delete(tx);
    await writeEvents(tx, first);
  };
  if (beforeCommit(tx, flush)) buffered.set(tx, first);
  else await writeEvents(tx, first);
}

/**
 * Writes events with their seals. Their ids and times are taken together from the database,
 * times from its clock, so ids and times rise together (though not in commit order: history
 * orders by time, lib/history/conditions.ts): ahead, by a statement the transaction sent anyway
 * (idsAhead), or else in one statement here; then one statement inserts them all.
 */
async function writeEvents(tx: Tx, items: Pending[]): Promise<void> {
  const unknown = [...new Set(items.map((i) => i.event.requestId).filter((id): id is string => Boolean(id) && !requestMeta.has(id!)))];
  if (unknown.length)
    for (const r of await sqlRows<{ id: string; workflowId: string; targetId: string }>(
      tx,
      sql`SELECT id, "workflowId", "targetId" FROM "AccessRequest" WHERE id = ANY(${unknown}::text[])`,
    ))
      rememberRequest(r);
  // Ids taken ahead by an earlier statement of the transaction first (idsAhead), then as many more as needed.
  const ahead = takenAhead.get(tx)?.splice(0, items.length) ?? [];
  const more = items.length - ahead.length;
  const taken =
    more === 0
      ? ahead
      : [
          ...ahead,
          ...(await sqlRows<{ id: bigint; now: Date }>(
            tx,
            sql`SELECT nextval('"AuditEvent_id_seq"') AS id, clock_timestamp() AS now FROM generate_series(1, ${more}::int)`,
          )),
        ];
  if (taken.length !== items.length) throw new Error("the database gave too few ids for audit events");
  const key = currentKey();
  const rows = items.map(({ event, context }, i) => {
    const request = event.requestId ? requestMeta.get(event.requestId) : undefined;
    const data = (event.actor.tokenId ? { ...event.data, tokenId: event.actor.tokenId } : (event.data ?? {})) as Record<string, unknown>;
    const content: SealedContent = {
      id: taken[i]!.id,
      occurredAt: taken[i]!.now,
      actorType: event.actor.type,
      actorId: event.actor.id ?? null,
      actorEmail: event.actor.email ?? null,
      action: event.action,
      requestId: event.requestId ?? null,
      fromStatus: event.fromStatus ?? null,
      toStatus: event.toStatus ?? null,
      // As stored: JSON without undefined members, so the seal is over what is read back.
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
    return { ...content, seal: sealOf(content, key), sealKeyId: key.id };
  });
  // One statement for all of them. The time is UTC, as Prisma stores it; a zone in the text is ignored by "timestamp(3)".
  const events = JSON.stringify(rows, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  // It carries the writes waiting to ride along before the commit (the jobs the transaction queued, lib/db/after-commit.ts).
  const riders = await takeRiders(tx);
  // Usually the transaction's last statement: its COMMIT then goes out right behind it (sqlRunLast).
  await sqlRunLast(
    tx,
    sql`${riders.length ? sql`WITH ${join(riders, ", ")}` : raw("")}
    INSERT INTO "AuditEvent" (id, "occurredAt", "actorType", "actorId", "actorEmail", action, "requestId", "fromStatus", "toStatus", data, ip, "userAgent", route, "workflowId", "targetId", environment, note, "httpRequestId", seal, "sealKeyId")
    SELECT id, "occurredAt", "actorType", "actorId", "actorEmail", action, "requestId", "fromStatus", "toStatus", data, ip, "userAgent", route, "workflowId", "targetId", environment, note, "httpRequestId", seal, "sealKeyId"
    FROM jsonb_to_recordset(${events}::jsonb) AS e(id bigint, "occurredAt" timestamp(3), "actorType" "ActorType", "actorId" text, "actorEmail" text, action text, "requestId" text, "fromStatus" "RequestStatus", "toStatus" "RequestStatus", data jsonb, ip text, "userAgent" text, route text, "workflowId" text, "targetId" text, environment text, note text, "httpRequestId" text, seal text, "sealKeyId" text)
    ORDER BY id`,
  );
  const changes = items.map((i) => changeOf(i.event)).filter((c) => c !== null);
  const committed = () => {
    for (const change of changes) forget(change.kind, change.id);
    wakeChainer();
  };
  // Outside db.$transaction there is no commit to wait for here: the chainer is woken (or polls), and caches hear the change from the database.
  if (!afterCommit(tx, committed)) wakeChainer();
}

/** What an event says this process's caches must forget once it commits: a grant that ended (active → any other state), an API token revoked, a person's or a service identity's groups changed. */
function changeOf(e: AuditInput): { kind: ChangeKind; id: string } | null {
  if (e.requestId && e.fromStatus === "active" && e.toStatus !== "active") return { kind: "request", id: e.requestId };
  if (e.action === "token.revoked" && typeof e.data?.tokenId === "string") return { kind: "token", id: e.data.tokenId };
  if (e.action === "user.directory_changed" && typeof e.data?.userId === "string") return { kind: "user", id: e.data.userId };
  // A service identity's groups or request-only mark: its tokens must not keep speaking with the old ones.
  if (e.action === "service_identity.updated" && typeof e.data?.serviceId === "string") return { kind: "user", id: e.data.serviceId };
  return null;
}

function forget(kind: ChangeKind, id: string): void {
  try {
    changedHere(kind, id);
  } catch (error) {
    // The change is committed: a cache that cannot forget must not make it look failed.
    logger("audit").error("a cache could not forget a change", { kind, id, error: (error as Error).message });
  }
}
