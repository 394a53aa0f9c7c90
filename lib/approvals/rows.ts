import type { AccessRequest, Approval, Prisma, User } from "@prisma/client";
import type { Tx } from "../db";
import { join, raw, sql, sqlRow, sqlRows, type On } from "../db/sql";

/**
 * The rows the request lifecycle reads and writes on its hot path (making, deciding and
 * showing a request), through the driver (lib/db/sql.ts) and typed as Prisma's models:
 * tests/integration/lifecycle-rows.test.ts holds each equal to what Prisma's client gives
 * for the same row, so a column added to the schema cannot go missing here unnoticed.
 */

export function requestRow(on: On, id: string): Promise<AccessRequest | null> {
  return sqlRow<AccessRequest>(on, sql`SELECT * FROM "AccessRequest" WHERE id = ${id}`);
}

export function userRow(on: On, id: string): Promise<User | null> {
  return sqlRow<User>(on, sql`SELECT * FROM "User" WHERE id = ${id}`);
}

/** A request's decisions, oldest first, with each approver's email and name. */
export function decisionRows(on: On, requestId: string): Promise<(Approval & { approver: { email: string; name: string | null } })[]> {
  return sqlRows<Approval & { approverEmail: string; approverName: string | null }>(
    on,
    sql`SELECT a.*, u.email AS "approverEmail", u.name AS "approverName" FROM "Approval" a JOIN "User" u ON u.id = a."approverId"
        WHERE a."requestId" = ${requestId} ORDER BY a."createdAt" ASC, a.id ASC`,
  ).then((rows) => rows.map(({ approverEmail, approverName, ...decision }) => ({ ...decision, approver: { email: approverEmail, name: approverName } })));
}

/** A column the writer may set, as plain values only: Dates, text, numbers, booleans, null. */
type Plain = Date | string | number | boolean | null;
const COLUMN = /^[A-Za-z][A-Za-z0-9]*$/;

/**
 * Writes `data` to a request if it still holds `status`, and returns the row as written
 * (none if it no longer held it). `updatedAt` is set as Prisma's @updatedAt sets it. Data
 * that is not plain values (a Prisma operation such as `{ increment: 1 }`) goes through
 * Prisma's client instead.
 */
export async function updateRequestIf(
  tx: Tx,
  where: { id: string; status: AccessRequest["status"] },
  data: Prisma.AccessRequestUpdateManyMutationInput,
): Promise<AccessRequest | undefined> {
  const entries = Object.entries(data).filter(([, value]) => value !== undefined);
  const plain = entries.every(
    ([column, value]) => COLUMN.test(column) && (value === null || value instanceof Date || ["string", "number", "boolean"].includes(typeof value)),
  );
  if (!plain) return (await tx.accessRequest.updateManyAndReturn({ where, data }))[0];
  // As Prisma's @updatedAt: now, unless the caller sets it.
  const sets = [...entries, ...("updatedAt" in data ? [] : [["updatedAt", new Date()] as const])].map(
    ([column, value]) => sql`${raw(`"${column}"`)} = ${value as Plain}${raw(column === "status" ? `::"RequestStatus"` : "")}`,
  );
  return (
    (await sqlRow<AccessRequest>(
      tx,
      sql`UPDATE "AccessRequest" SET ${join(sets, ", ")} WHERE id = ${where.id} AND status = ${where.status}::"RequestStatus" RETURNING *`,
    )) ?? undefined
  );
}
