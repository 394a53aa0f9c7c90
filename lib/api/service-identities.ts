import "server-only";
import { z } from "zod";
import { actorOf } from "../approvals/engine";
import { recordEvent } from "../audit/record";
import { db } from "../db";
import { conflict, forbidden, invalid, notFound } from "../errors";
import { policy } from "../policy/current";
import { rolesForGroups, type Principal } from "../policy/evaluate";

/**
 * Service identities: CI jobs, bots and AI agents. They never sign in; they act through
 * service tokens. Their groups (from the policy's group list) give them roles exactly as
 * a person's IdP groups do, so the same policy decides what they may request and approve.
 */

const serviceSchema = z.object({
  name: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9-]{1,39}$/, "2 to 40 lower-case letters, digits and dashes, starting with a letter or digit."),
  description: z.string().trim().min(1, "Say what this identity is for.").max(300),
  groups: z.array(z.string()).min(1, "Give it at least one group."),
  requestOnly: z.boolean(),
});

const updateSchema = serviceSchema.pick({ groups: true, requestOnly: true });

function requireAdmin(who: Principal) {
  if (who.via || !who.roles.includes("admin")) throw forbidden("Only an admin, signed in to the portal, can manage service identities.");
}

function fieldsOf(error: z.ZodError): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const issue of error.issues) fields[String(issue.path[0] ?? "form")] ??= issue.message;
  return fields;
}

function checkGroups(groups: string[]): void {
  const known = Object.keys(policy().roles);
  const unknown = groups.filter((g) => !known.includes(g));
  if (unknown.length) throw invalid(`Unknown group ${unknown.join(", ")}: the policy knows ${known.join(", ")}.`, { groups: `Unknown group: ${unknown.join(", ")}.` });
}

/** The e-mail-like name service identities carry in the audit trail; never a mailbox. */
export const serviceEmail = (name: string) => `${name}@service.latchkey`;

export async function createServiceIdentity(who: Principal, raw: unknown) {
  requireAdmin(who);
  const parsed = serviceSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldsOf(parsed.error));
  const input = parsed.data;
  checkGroups(input.groups);
  return db.$transaction(async (tx) => {
    const email = serviceEmail(input.name);
    if (await tx.user.findUnique({ where: { email } })) throw conflict(`A service identity named ${input.name} already exists.`);
    const roles = rolesForGroups(policy(), input.groups);
    const user = await tx.user.create({
      data: { email, name: input.name, kind: "service", description: input.description, groups: input.groups, roles, requestOnly: input.requestOnly, createdById: who.id },
    });
    await recordEvent(tx, { actor: actorOf(who), action: "service_identity.created", data: { serviceId: user.id, name: input.name, groups: input.groups, roles, requestOnly: input.requestOnly } });
    return user;
  });
}

export async function updateServiceIdentity(who: Principal, serviceId: string, raw: unknown) {
  requireAdmin(who);
  const parsed = updateSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldsOf(parsed.error));
  checkGroups(parsed.data.groups);
  return db.$transaction(async (tx) => {
    const service = await tx.user.findUnique({ where: { id: serviceId } });
    if (!service || service.kind !== "service") throw notFound("Service identity");
    const roles = rolesForGroups(policy(), parsed.data.groups);
    const user = await tx.user.update({ where: { id: serviceId }, data: { ...parsed.data, roles } });
    await recordEvent(tx, {
      actor: actorOf(who),
      action: "service_identity.updated",
      data: { serviceId, name: service.name ?? service.email, from: { groups: service.groups, requestOnly: service.requestOnly }, to: { ...parsed.data, roles } },
    });
    return user;
  });
}

export async function listServiceIdentities() {
  return db.user.findMany({
    where: { kind: "service" },
    orderBy: { name: "asc" },
    include: { apiTokens: { orderBy: { createdAt: "desc" }, omit: { tokenHash: true } } },
  });
}
