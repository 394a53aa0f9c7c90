import { Prisma } from "@prisma/client";
import type { Tx } from "../db";
import { sql, sqlRows } from "../db/sql";
import type { Parties } from "../policy/evaluate";

/**
 * Who counts as one party for separation of duties. An admin who makes a service identity
 * could otherwise approve his own access with its token, or let it collect access he then
 * uses; so a service identity and its owners are one party for every self-approval,
 * one-decision-per-party and break-glass review rule. Read inside the deciding transaction,
 * so an owner added a moment ago counts.
 */

/** The party of each identity: itself first, then, for a service identity, its owners. */
export async function partiesOf(tx: Tx, ids: readonly string[]): Promise<Parties> {
  const unique = [...new Set(ids)];
  const owners = await sqlRows<{ serviceId: string; ownerId: string }>(
    tx,
    sql`SELECT "serviceId", "ownerId" FROM "ServiceOwner" WHERE "serviceId" = ANY(${unique}::text[])`,
  );
  return partiesFrom(unique, owners);
}

/** The parties of `ids` from their owners as read (a statement of the caller's may read them with other things). */
export function partiesFrom(ids: readonly string[], owners: readonly { serviceId: string; ownerId: string }[]): Parties {
  const parties: Record<string, string[]> = Object.fromEntries([...new Set(ids)].map((id) => [id, [id]]));
  for (const { serviceId, ownerId } of owners) if (!parties[serviceId]!.includes(ownerId)) parties[serviceId]!.push(ownerId);
  return parties;
}

/**
 * Every identity in one party with this one: itself, its owners, the service identities it
 * owns, and the other service identities of its owners. For lists (an inbox) that should
 * not offer what the engine would refuse.
 */
export async function partyMembers(tx: Tx, id: string): Promise<string[]> {
  return (await sqlRows<{ id: string }>(tx, partySubquery(id))).map((r) => r.id);
}

/**
 * The same members as a subquery of one `id` column, for a statement that leaves the party out
 * (one definition for both): of an id given, or of a column of the statement's (Prisma.raw).
 */
export function partySubquery(id: string | Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    SELECT ${id}::text AS id
    UNION SELECT "ownerId" FROM "ServiceOwner" WHERE "serviceId" = ${id}
    UNION SELECT "serviceId" FROM "ServiceOwner" WHERE "ownerId" = ${id} OR "ownerId" IN (SELECT "ownerId" FROM "ServiceOwner" WHERE "serviceId" = ${id})`;
}
