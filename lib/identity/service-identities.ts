import "server-only";
import type { Prisma, ServiceIdentityChange, User } from "@prisma/client";
import { z } from "zod";
import { actorOf, recordEvent, type Actor } from "../audit/record";
import { db, type Tx } from "../db";
import { conflict, fieldErrorsOf, forbidden, invalid, notFound } from "../errors";
import { policy } from "../policy/current";
import { rolesForGroups, type Principal } from "../policy/evaluate";

/**
 * Service identities: CI jobs, bots and AI agents. They never sign in; they act through
 * service tokens. Their groups (from the policy's group list) give them roles exactly as
 * a person's IdP groups do, so the same policy decides what they may request and approve.
 * Each has owners (its creator and any named people), who count as one party with it.
 * Making one able to approve, or giving such a one an approver group, only proposes the
 * change: another admin carries it out (lib/identity/service-changes.ts).
 */

const serviceSchema = z.object({
  name: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9-]{1,39}$/, "2 to 40 lower-case letters, digits and dashes, starting with a letter or digit."),
  description: z.string().trim().min(1, "Say what this identity is for.").max(300),
  groups: z.array(z.string()).min(1, "Give it at least one group."),
  requestOnly: z.boolean(),
  owners: z.array(z.string().trim().toLowerCase().email("Owners are people's e-mail addresses.")).max(10, "At most 10 owners.").default([]),
});

// As the engine's: a busy database must not cut a change short halfway.
const TX = { maxWait: 15_000, timeout: 30_000 } as const;

const updateSchema = serviceSchema.pick({ groups: true, requestOnly: true });

export type ServiceProposal = { description: string; groups: string[]; requestOnly: boolean; ownerIds: string[] } | { groups: string[]; requestOnly: boolean };

/** What an admin's create or update did: carried out, or waiting for another admin. */
export type ServiceOutcome =
  { outcome: "done"; service: User; change?: undefined } | { outcome: "proposed"; change: ServiceIdentityChange; service?: undefined };

function requireAdmin(who: Principal) {
  if (who.via || !who.roles.includes("admin")) throw forbidden("Only an admin, signed in to the portal, can manage service identities.");
}

export function checkGroups(groups: string[]): void {
  const known = Object.keys(policy().roles);
  const unknown = groups.filter((g) => !known.includes(g));
  if (unknown.length)
    throw invalid(`Unknown group ${unknown.join(", ")}: the policy knows ${known.join(", ")}.`, { groups: `Unknown group: ${unknown.join(", ")}.` });
}

/** Groups that give the approver role under the current policy. */
function approverGroups(groups: readonly string[]): string[] {
  return groups.filter((g) => (policy().roles[g] ?? []).includes("approver"));
}

/** Whether an identity so configured could approve anything. */
function canApprove(groups: readonly string[], requestOnly: boolean): boolean {
  return !requestOnly && approverGroups(groups).length > 0;
}

/** The e-mail-like name service identities carry in the audit trail; never a mailbox. */
export const serviceEmail = (name: string) => `${name}@service.latchkey`;

async function ownerIdsOf(tx: Tx, emails: string[]): Promise<string[]> {
  const people = await tx.user.findMany({ where: { email: { in: emails }, kind: "person" }, select: { id: true, email: true } });
  const missing = emails.filter((e) => !people.some((p) => p.email === e));
  if (missing.length)
    throw invalid(`Owners must be people known to Latchkey: ${missing.join(", ")} is not.`, {
      owners: `Not a person known to Latchkey: ${missing.join(", ")}.`,
    });
  return people.map((p) => p.id);
}

async function proposeChange(
  tx: Tx,
  who: Principal,
  change: { kind: "create" | "update"; serviceId: string | null; name: string; proposal: ServiceProposal },
): Promise<ServiceIdentityChange> {
  if (await tx.serviceIdentityChange.findFirst({ where: { name: change.name, status: "pending" }, select: { id: true } })) {
    throw conflict(`A change to ${change.name} is already waiting for another admin's approval.`);
  }
  const row = await tx.serviceIdentityChange.create({ data: { ...change, proposal: change.proposal as Prisma.InputJsonObject, requestedById: who.id } });
  await recordEvent(tx, {
    actor: actorOf(who),
    action: "service_identity.change_requested",
    data: {
      changeId: row.id,
      kind: change.kind,
      serviceId: change.serviceId,
      name: change.name,
      groups: change.proposal.groups,
      requestOnly: change.proposal.requestOnly,
    },
  });
  return row;
}

/** Creates the identity and its owners (the creator first). `actor` carries it out; `creatorId` asked for it. */
export async function applyCreate(
  tx: Tx,
  actor: Actor,
  creatorId: string,
  name: string,
  input: { description: string; groups: string[]; requestOnly: boolean; ownerIds: string[] },
  changeId?: string,
): Promise<User> {
  const email = serviceEmail(name);
  if (await tx.user.findUnique({ where: { email } })) throw conflict(`A service identity named ${name} already exists.`);
  const roles = rolesForGroups(policy(), input.groups);
  const user = await tx.user.create({
    data: { email, name, kind: "service", description: input.description, groups: input.groups, roles, requestOnly: input.requestOnly, createdById: creatorId },
  });
  const owners = [...new Set([creatorId, ...input.ownerIds])];
  await tx.serviceOwner.createMany({ data: owners.map((ownerId) => ({ serviceId: user.id, ownerId, addedById: creatorId })) });
  await recordEvent(tx, {
    actor,
    action: "service_identity.created",
    data: { serviceId: user.id, name, groups: input.groups, roles, requestOnly: input.requestOnly, owners, ...(changeId ? { changeId } : {}) },
  });
  return user;
}

/** Changes the identity's groups and request-only mark. */
export async function applyUpdate(tx: Tx, actor: Actor, service: User, input: { groups: string[]; requestOnly: boolean }, changeId?: string): Promise<User> {
  const roles = rolesForGroups(policy(), input.groups);
  const user = await tx.user.update({ where: { id: service.id }, data: { groups: input.groups, requestOnly: input.requestOnly, roles } });
  await recordEvent(tx, {
    actor,
    action: "service_identity.updated",
    data: {
      serviceId: service.id,
      name: service.name ?? service.email,
      from: { groups: service.groups, requestOnly: service.requestOnly },
      to: { ...input, roles },
      ...(changeId ? { changeId } : {}),
    },
  });
  return user;
}

export async function createServiceIdentity(who: Principal, raw: unknown): Promise<ServiceOutcome> {
  requireAdmin(who);
  const parsed = serviceSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldErrorsOf(parsed.error.issues));
  const { name, owners, ...input } = parsed.data;
  checkGroups(input.groups);
  return db.$transaction(async (tx) => {
    if (await tx.user.findUnique({ where: { email: serviceEmail(name) } })) throw conflict(`A service identity named ${name} already exists.`);
    const ownerIds = await ownerIdsOf(tx, owners);
    if (canApprove(input.groups, input.requestOnly)) {
      return { outcome: "proposed", change: await proposeChange(tx, who, { kind: "create", serviceId: null, name, proposal: { ...input, ownerIds } }) };
    }
    return { outcome: "done", service: await applyCreate(tx, actorOf(who), who.id, name, { ...input, ownerIds }) };
  }, TX);
}

/**
 * Changes a service identity's groups or request-only mark. A change that lets it approve
 * where it could not, or adds an approver group to one that can, waits for another admin.
 */
export async function updateServiceIdentity(who: Principal, serviceId: string, raw: unknown): Promise<ServiceOutcome> {
  requireAdmin(who);
  const parsed = updateSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldErrorsOf(parsed.error.issues));
  checkGroups(parsed.data.groups);
  return db.$transaction(async (tx) => {
    const service = await tx.user.findUnique({ where: { id: serviceId } });
    if (!service || service.kind !== "service") throw notFound("Service identity");
    const { groups, requestOnly } = parsed.data;
    const gained = approverGroups(groups).filter((g) => !approverGroups(service.groups).includes(g));
    const widens = canApprove(groups, requestOnly) && (!canApprove(service.groups, service.requestOnly) || gained.length > 0);
    if (widens)
      return {
        outcome: "proposed",
        change: await proposeChange(tx, who, { kind: "update", serviceId, name: service.name ?? service.email, proposal: { groups, requestOnly } }),
      };
    return { outcome: "done", service: await applyUpdate(tx, actorOf(who), service, { groups, requestOnly }) };
  }, TX);
}

export async function listServiceIdentities() {
  return db.user.findMany({
    where: { kind: "service" },
    orderBy: { name: "asc" },
    include: {
      apiTokens: { orderBy: { createdAt: "desc" }, omit: { tokenHash: true } },
      owners: { include: { owner: { select: { email: true } } }, orderBy: { createdAt: "asc" } },
    },
  });
}
