import { Prisma, type AccessRequest, type Approval, type Credential, type User } from "@prisma/client";
import type { Tx } from "../db";
import { raw, sql, sqlAhead, sqlRow, sqlSend, type On } from "../db/sql";
import { partySubquery } from "../identity/parties";
import { idsAhead, keepIdsAhead, type IdsAhead } from "../audit/record";

/**
 * The rows the request lifecycle reads and writes on its hot path (making, deciding and
 * showing a request), through the driver (lib/db/sql.ts) and typed as Prisma's models:
 * tests/integration/lifecycle-rows.test.ts holds each equal to what Prisma's client gives
 * for the same row, so a column added to the schema cannot go missing here unnoticed.
 *
 * Columns are named, never `*`: these statements are prepared, and PostgreSQL refuses a
 * prepared `SELECT *` once a migration adds a column ("cached plan must not change result
 * type"); a named list is the model's own (Prisma's scalar fields), so it never changes
 * under a running process.
 */

/** A model's columns, from Prisma's list of its scalar fields, optionally of a table alias. */
function columnsOf(fields: Record<string, string>, alias?: string): Prisma.Sql {
  return raw(
    Object.values(fields)
      .map((field) => `${alias ? `${alias}.` : ""}"${field}"`)
      .join(", "),
  );
}
export const REQUEST_COLUMNS = columnsOf(Prisma.AccessRequestScalarFieldEnum);
const REQUEST_COLUMNS_OF_R = columnsOf(Prisma.AccessRequestScalarFieldEnum, "r");
const USER_COLUMNS_OF_U = columnsOf(Prisma.UserScalarFieldEnum, "u");

const lockedRequestQuery = (id: string) => sql`SELECT ${REQUEST_COLUMNS} FROM "AccessRequest" WHERE id = ${id} FOR UPDATE`;

/** A request's row, taking its row lock for the rest of the transaction (as lockRequest does) in the same statement. */
export async function lockedRequestRow(tx: Tx, id: string): Promise<AccessRequest | null> {
  return sqlRow<AccessRequest>(tx, lockedRequestQuery(id));
}

type Decided = Approval & { approver: { email: string; name: string | null } };
type DecidedJson = Omit<Decided, "createdAt"> & { createdAt: string };
type Owner = { serviceId: string; ownerId: string };

/** A request's decisions as one JSON array, oldest first, each with its approver; times as UTC text (made Dates again by `decisionsOf`). */
const decisionsJson = (requestId: Prisma.Sql) => sql`COALESCE((
    SELECT json_agg(json_build_object('id', a.id, 'requestId', a."requestId", 'approverId', a."approverId", 'stage', a.stage,
             'approverGroups', a."approverGroups", 'decision', a.decision, 'comment', a.comment,
             'createdAt', to_char(a."createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'approver', json_build_object('email', au.email, 'name', au.name)) ORDER BY a."createdAt", a.id)
    FROM "Approval" a JOIN "User" au ON au.id = a."approverId" WHERE a."requestId" = ${requestId}), '[]')`;
const decisionsOf = (json: DecidedJson[]): Decided[] => json.map((d) => ({ ...d, createdAt: new Date(d.createdAt) }));

/**
 * The owners of the request's parties as one JSON array: of its requester, of `personId` (who
 * decides or looks) and of everyone who decided on it, as partiesOf reads them (lib/identity/parties.ts).
 */
const ownersJson = (request: { id: Prisma.Sql; requesterId: Prisma.Sql }, personId: string) => sql`COALESCE((
    SELECT json_agg(json_build_object('serviceId', o."serviceId", 'ownerId', o."ownerId"))
    FROM "ServiceOwner" o
    WHERE o."serviceId" = ANY(ARRAY[${request.requesterId}, ${personId}::text] || ARRAY(SELECT "approverId" FROM "Approval" WHERE "requestId" = ${request.id}))), '[]')`;

type ContextRow = User & { decisionsJson: DecidedJson[]; ownersJson: Owner[] };

/**
 * What a decision needs once it holds the request's row lock: the requester under a share
 * lock (a directory change to them either committed before and is seen, or waits for this
 * decision), the decisions so far and the owners of everyone's party, in one statement; null
 * when there is no such request.
 */
const decisionContextQuery = (requestId: string, deciderId: string) =>
  sql`SELECT ${USER_COLUMNS_OF_U}, ${decisionsJson(sql`${requestId}`)} AS "decisionsJson",
        ${ownersJson({ id: sql`${requestId}`, requesterId: raw("u.id") }, deciderId)} AS "ownersJson"
      FROM "User" u WHERE u.id = (SELECT "requesterId" FROM "AccessRequest" WHERE id = ${requestId}) FOR SHARE OF u`;

function contextOf(row: ContextRow) {
  const { decisionsJson: decisions, ownersJson: owners, ...requester } = row;
  return { requester, decisions: decisionsOf(decisions), owners };
}

/** What a decision reads of a request it holds the row lock of (decisionContextQuery). */
export async function decisionContext(tx: Tx, request: Pick<AccessRequest, "id" | "requesterId">, deciderId: string) {
  const row = await sqlRow<ContextRow>(tx, decisionContextQuery(request.id, deciderId));
  if (!row) throw new Error(`the requester ${request.requesterId} of request ${request.id} is not in the database`);
  return contextOf(row);
}

/**
 * A request under its row lock with what deciding on it reads (decisionContext), or null: the
 * lock's statement and the context's go out together, one round trip (lib/db/sql.ts, sqlAhead).
 * PostgreSQL runs the context's once the lock's is done, waiting for the lock included, and it
 * reads as of then: what the decision that held the lock before committed (its decision, its
 * change to the requester) is seen, as when the context was read after the lock's answer.
 */
export async function lockedRequestWithContext(tx: Tx, id: string, deciderId: string) {
  const locking = sqlAhead<AccessRequest>(tx, lockedRequestQuery(id));
  // Awaited together: when the lock's statement fails, the context's (refused behind it) is handled too.
  const [[request], row] = await Promise.all([locking, sqlRow<ContextRow>(tx, decisionContextQuery(id, deciderId))]);
  if (!request) return null;
  if (!row) throw new Error(`the requester ${request.requesterId} of request ${request.id} is not in the database`);
  return { request, ...contextOf(row) };
}

/** Someone who could approve a stage of a waiting request (stageViews, lib/approvals/queries.ts, works out which). */
export type Approver = Pick<User, "id" | "email" | "groups">;

/**
 * While the request waits (pending), everyone who could approve one of its stages, as one JSON
 * array ordered by email: approvers who are not request-only, in a group of any of its stages,
 * outside its requester's party (partySubquery); null once it no longer waits. Which of them may
 * still approve which stage is stageViews' to work out.
 */
const approversJson = sql`CASE WHEN r.status = 'pending' THEN COALESCE((
    SELECT json_agg(json_build_object('id', a.id, 'email', a.email, 'groups', a.groups) ORDER BY a.email)
    FROM "User" a
    WHERE a.roles @> ARRAY['approver']::text[] AND NOT a."requestOnly"
      AND a.groups && ARRAY(SELECT jsonb_array_elements_text(s -> 'groups') FROM jsonb_array_elements(r.stages) s)
      AND a.id NOT IN (${partySubquery(raw('r."requesterId"'))})), '[]') END`;

type ViewedCredential = Pick<Credential, "id" | "kid" | "issuedAt" | "expiresAt" | "revealedAt" | "revokedAt" | "sealedToken">;

type ViewedRow = AccessRequest & {
  requesterEmail: string;
  requesterName: string | null;
  credentialId: string | null;
  credentialKid: string;
  credentialIssuedAt: Date;
  credentialExpiresAt: Date;
  credentialRevealedAt: Date | null;
  credentialRevokedAt: Date | null;
  credentialSealedToken: string | null;
  decisionsJson: DecidedJson[];
  ownersJson: Owner[];
  approversJson: Approver[] | null;
};

/**
 * What the view reads besides the request's own columns, from a request row aliased `r`: its
 * requester, credential, decisions, the owners of its parties (its requester's, `viewerId`'s
 * and its deciders') and, while it waits, who could approve it.
 */
const viewedColumns = (viewerId: string) => sql`u.email AS "requesterEmail", u.name AS "requesterName",
          c.id AS "credentialId", c.kid AS "credentialKid", c."issuedAt" AS "credentialIssuedAt", c."expiresAt" AS "credentialExpiresAt",
          c."revealedAt" AS "credentialRevealedAt", c."revokedAt" AS "credentialRevokedAt", c."sealedToken" AS "credentialSealedToken",
          ${decisionsJson(raw("r.id"))} AS "decisionsJson",
          ${ownersJson({ id: raw("r.id"), requesterId: raw('r."requesterId"') }, viewerId)} AS "ownersJson",
          ${approversJson} AS "approversJson"`;
const VIEWED_JOINS = raw(`JOIN "User" u ON u.id = r."requesterId" LEFT JOIN "Credential" c ON c."requestId" = r.id`);

/** A request as its page and the API show it: see viewedRequestRow. */
export type ViewedRequest = NonNullable<ReturnType<typeof viewedOf>>;

function viewedOf(row: ViewedRow) {
  const {
    requesterEmail,
    requesterName,
    credentialId,
    credentialKid,
    credentialIssuedAt,
    credentialExpiresAt,
    credentialRevealedAt,
    credentialRevokedAt,
    credentialSealedToken,
    decisionsJson: decisions,
    ownersJson: owners,
    approversJson: approvers,
    ...request
  } = row;
  const credential: ViewedCredential | null =
    credentialId === null
      ? null
      : {
          id: credentialId,
          kid: credentialKid,
          issuedAt: credentialIssuedAt,
          expiresAt: credentialExpiresAt,
          revealedAt: credentialRevealedAt,
          revokedAt: credentialRevokedAt,
          sealedToken: credentialSealedToken,
        };
  return {
    request: { ...request, requester: { id: request.requesterId, email: requesterEmail, name: requesterName }, decisions: decisionsOf(decisions), credential },
    owners,
    approvers: approvers ?? [],
  };
}

/**
 * A request as its page and the API show it: with its requester, its decisions (oldest
 * first, each with its approver) and its credential, the owners of the parties of its
 * requester, `viewerId` and its deciders, and who could approve it while it waits, in one statement. The decisions come as JSON,
 * whose one time (createdAt) is made a Date again here.
 */
export async function viewedRequestRow(on: On, id: string, viewerId: string): Promise<ViewedRequest | null> {
  const row = await sqlRow<ViewedRow>(
    on,
    sql`SELECT ${REQUEST_COLUMNS_OF_R}, ${viewedColumns(viewerId)} FROM "AccessRequest" r ${VIEWED_JOINS} WHERE r.id = ${id}`,
  );
  return row && viewedOf(row);
}

/**
 * A caller that will show a request once its transaction commits (the API's answer to making
 * or deciding one) asks for its view at the request's last write instead of reading it again
 * after the commit: the statement that inserts or updates the request returns the view too
 * (writeRequestRow), as of that statement, which is the request as this transaction leaves it
 * (the request's last write in it; what follows touches other rows). One statement fewer per
 * call. The rule that keeps it true: a write in the same transaction, after one that returned
 * the view, of the request, its decisions or its credential, other than by writeRequestRow,
 * calls forgetView, so the view is read after the commit instead (transition.ts and decide.ts
 * do; tests/integration/lifecycle-rows.test.ts holds each answer equal to a read after the commit).
 */
export interface WriteView {
  viewerId: string;
  /** The request whose view is wanted; unset, the first request written in the transaction (a new one). */
  requestId?: string;
  viewed?: ViewedRequest;
}

const watched = new WeakMap<object, WriteView>();

/** Asks `tx`'s writes of the request (see WriteView) to return its view; a view from an earlier attempt is forgotten. */
export function watchWrites(tx: Tx, view: WriteView): void {
  view.viewed = undefined;
  watched.set(tx, view);
}

/** Drops the view kept for `requestId` in `tx`: it was written other than by writeRequestRow, and is read again after the commit. */
export function forgetView(tx: Tx, requestId: string): void {
  const view = watched.get(tx);
  if (view && (view.requestId === undefined || view.requestId === requestId)) view.viewed = undefined;
}

/**
 * Runs a write of one request (an INSERT or UPDATE of "AccessRequest" returning its columns)
 * and returns the row written; when `tx` watches this request, the same statement returns its
 * view, which is kept for the watcher.
 */
export async function writeRequestRow(tx: Tx, write: Prisma.Sql, id?: string): Promise<AccessRequest | null> {
  const view = watched.get(tx);
  // The same statement takes the ids and time of the transaction's audit events (lib/audit/record.ts, idsAhead).
  const ahead = idsAhead(tx);
  const aheadColumns = ahead ? sql`, ${ahead}` : raw("");
  if (!view || (view.requestId !== undefined && id !== undefined && view.requestId !== id)) {
    const written = await sqlRow<AccessRequest & IdsAhead>(tx, sql`${write} RETURNING ${REQUEST_COLUMNS}${aheadColumns}`);
    return written && keepIdsAhead(tx, written);
  }
  const written = await sqlRow<ViewedRow & IdsAhead>(
    tx,
    sql`WITH r AS (${write} RETURNING ${REQUEST_COLUMNS}) SELECT ${REQUEST_COLUMNS_OF_R}, ${viewedColumns(view.viewerId)}${aheadColumns} FROM r ${VIEWED_JOINS}`,
  );
  if (!written) return null;
  const viewed = viewedOf(keepIdsAhead(tx, written));
  const { requester: _requester, decisions: _decisions, credential: _credential, ...request } = viewed.request;
  if (view.requestId !== undefined && view.requestId !== request.id) return request;
  view.requestId = request.id;
  view.viewed = viewed;
  return request;
}

/**
 * Records a decision: its id is the database's (a random UUID without dashes), its time this
 * process's clock, as Prisma's @default(now()) is. Sent with the transaction's next statement
 * (lib/db/sql.ts, sqlSend), which sees it.
 */
export async function insertDecision(tx: Tx, data: Omit<Approval, "id" | "createdAt">): Promise<void> {
  await sqlSend(
    tx,
    sql`INSERT INTO "Approval" ("requestId", "approverId", stage, "approverGroups", decision, comment, "createdAt")
        VALUES (${data.requestId}, ${data.approverId}, ${data.stage}, ${data.approverGroups}, ${data.decision}::"Decision", ${data.comment}, ${new Date()})`,
  );
}
