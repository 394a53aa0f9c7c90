import type { AccessRequest, Approval, Credential, User } from "@prisma/client";
import { randomUUID } from "node:crypto";
import type { Tx } from "../db";
import { raw, sql, sqlRow, sqlRows, type On } from "../db/sql";

/**
 * The rows the request lifecycle reads and writes on its hot path (making, deciding and
 * showing a request), through the driver (lib/db/sql.ts) and typed as Prisma's models:
 * tests/integration/lifecycle-rows.test.ts holds each equal to what Prisma's client gives
 * for the same row, so a column added to the schema cannot go missing here unnoticed.
 */

export function requestRow(on: On, id: string): Promise<AccessRequest | null> {
  return sqlRow<AccessRequest>(on, sql`SELECT * FROM "AccessRequest" WHERE id = ${id}`);
}

/** A request's row, taking its row lock for the rest of the transaction (as lockRequest does) in the same statement. */
export function lockedRequestRow(tx: Tx, id: string): Promise<AccessRequest | null> {
  return sqlRow<AccessRequest>(tx, sql`SELECT * FROM "AccessRequest" WHERE id = ${id} FOR UPDATE`);
}

/** A person's row; with `share`, under a share lock for the rest of the transaction (a directory change to them waits for its commit). */
export function userRow(on: On, id: string, options: { share?: boolean } = {}): Promise<User | null> {
  return sqlRow<User>(on, sql`SELECT * FROM "User" WHERE id = ${id}${raw(options.share ? " FOR SHARE" : "")}`);
}

/** A request's decisions, oldest first, with each approver's email and name. */
export function decisionRows(on: On, requestId: string): Promise<(Approval & { approver: { email: string; name: string | null } })[]> {
  return sqlRows<Approval & { approverEmail: string; approverName: string | null }>(
    on,
    sql`SELECT a.*, u.email AS "approverEmail", u.name AS "approverName" FROM "Approval" a JOIN "User" u ON u.id = a."approverId"
        WHERE a."requestId" = ${requestId} ORDER BY a."createdAt" ASC, a.id ASC`,
  ).then((rows) => rows.map(({ approverEmail, approverName, ...decision }) => ({ ...decision, approver: { email: approverEmail, name: approverName } })));
}

type ViewedCredential = Pick<Credential, "id" | "kid" | "issuedAt" | "expiresAt" | "revealedAt" | "revokedAt" | "sealedToken">;

/**
 * A request as its page and the API show it: with its requester, its decisions (oldest
 * first, each with its approver) and its credential, in one statement. The decisions come
 * as JSON, whose one time (createdAt) is made a Date again here.
 */
export async function viewedRequestRow(on: On, id: string) {
  const row = await sqlRow<
    AccessRequest & {
      requesterEmail: string;
      requesterName: string | null;
      credentialId: string | null;
      credentialKid: string;
      credentialIssuedAt: Date;
      credentialExpiresAt: Date;
      credentialRevealedAt: Date | null;
      credentialRevokedAt: Date | null;
      credentialSealedToken: string | null;
      decisionsJson: (Omit<Approval, "createdAt"> & { createdAt: string; approver: { email: string; name: string | null } })[];
    }
  >(
    on,
    sql`SELECT r.*, u.email AS "requesterEmail", u.name AS "requesterName",
          c.id AS "credentialId", c.kid AS "credentialKid", c."issuedAt" AS "credentialIssuedAt", c."expiresAt" AS "credentialExpiresAt",
          c."revealedAt" AS "credentialRevealedAt", c."revokedAt" AS "credentialRevokedAt", c."sealedToken" AS "credentialSealedToken",
          COALESCE((SELECT json_agg(json_build_object('id', a.id, 'requestId', a."requestId", 'approverId', a."approverId", 'stage', a.stage,
                      'approverGroups', a."approverGroups", 'decision', a.decision, 'comment', a.comment,
                      'createdAt', to_char(a."createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                      'approver', json_build_object('email', au.email, 'name', au.name)) ORDER BY a."createdAt", a.id)
                    FROM "Approval" a JOIN "User" au ON au.id = a."approverId" WHERE a."requestId" = r.id), '[]') AS "decisionsJson"
        FROM "AccessRequest" r JOIN "User" u ON u.id = r."requesterId" LEFT JOIN "Credential" c ON c."requestId" = r.id
        WHERE r.id = ${id}`,
  );
  if (!row) return null;
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
    decisionsJson,
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
    ...request,
    requester: { id: request.requesterId, email: requesterEmail, name: requesterName },
    decisions: decisionsJson.map((d) => ({ ...d, createdAt: new Date(d.createdAt) })),
    credential,
  };
}

/**
 * New rows' ids on this path: random UUIDs (v4), which the schema also makes for both tables
 * (@default(uuid())), so a row's id looks the same whichever path wrote it. Not cuid2: it
 * hashes each id in JavaScript, 0.37 ms of CPU apiece here, against 2.5 µs for a UUID.
 */
export const newId = (): string => randomUUID();

/** Records a decision; its time is this process's clock, as Prisma's @default(now()) is. */
export async function insertDecision(tx: Tx, data: Omit<Approval, "id" | "createdAt">): Promise<void> {
  await sqlRow(
    tx,
    sql`INSERT INTO "Approval" (id, "requestId", "approverId", stage, "approverGroups", decision, comment, "createdAt")
        VALUES (${newId()}, ${data.requestId}, ${data.approverId}, ${data.stage}, ${data.approverGroups}, ${data.decision}::"Decision", ${data.comment}, ${new Date()})`,
  );
}
