import "server-only";
/**
 * SCIM Groups. A group's members are the people whose groups (User.groups, the names the
 * policy's roles and rules use) contain its displayName, so a group pushed by SCIM and the
 * same group read from the ID token at sign-in are one thing. Every change of membership
 * goes through the directory (applyDirectoryChange), one person at a time, which ends at
 * once whatever the person no longer may have and says why in the audit trail.
 */
import type { ScimGroup } from "@prisma/client";
import { actorOf, recordEvent } from "../../audit/record";
import { db } from "../../db";
import type { Principal } from "../../policy/evaluate";
import { applyDirectoryChange } from "../directory";
import { invalidFilter, invalidValue, noTarget, scimNotFound, uniqueness } from "./errors";
import { CORE_GROUP, parseFilter } from "./filter";
import { groupFromBody, patchGroup, type GroupState } from "./group-resource";
import { listResponse, meta, project } from "./listing";
import type { ListQuery } from "./listing";
import { parsePatch } from "./patch-op";
import { serially } from "./serial";

const PEOPLE = { kind: "person" as const, OR: [{ scim: null }, { scim: { deletedAt: null } }] };

async function membersOf(displayName: string) {
  return db.user.findMany({ where: { ...PEOPLE, groups: { has: displayName } }, select: { id: true, email: true }, orderBy: { email: "asc" } });
}

async function render(group: ScimGroup, view: Parameters<typeof project>[1]) {
  const wantsMembers = !view.excluded.includes("members") && (!view.attributes || view.attributes.some((a) => a.startsWith("members")));
  const members = wantsMembers ? await membersOf(group.displayName) : [];
  return project(
    {
      schemas: [CORE_GROUP],
      id: group.id,
      ...(group.externalId ? { externalId: group.externalId } : {}),
      displayName: group.displayName,
      members: members.map((m) => ({ value: m.id, display: m.email, type: "User", $ref: meta("User", m.id, group.createdAt, group.createdAt).location })),
      meta: meta("Group", group.id, group.createdAt, group.updatedAt),
    },
    view,
  );
}

async function groupById(id: string): Promise<ScimGroup> {
  const group = id.length <= 100 ? await db.scimGroup.findUnique({ where: { id } }) : null;
  if (!group) throw scimNotFound("Group", id);
  return group;
}

export async function getGroup(id: string, view: Parameters<typeof project>[1]) {
  return render(await groupById(id), view);
}

export async function listGroups(query: ListQuery) {
  const and: object[] = [];
  for (const { attr, value } of query.filter ? parseFilter(query.filter) : []) {
    if (typeof value !== "string") throw invalidFilter(`${attr} compares with a quoted string.`);
    if (attr === "id") and.push({ id: value });
    else if (attr === "displayname") and.push({ displayName: value });
    else if (attr === "externalid") and.push({ externalId: value });
    else if (attr === "members.value" || attr === "members") {
      const member = await db.user.findFirst({ where: { id: value, ...PEOPLE }, select: { groups: true } });
      and.push({ displayName: { in: member?.groups ?? [] } });
    } else throw invalidFilter(`Latchkey filters Groups by id, displayName, externalId and members.value, not ${attr}.`);
  }
  const where = { AND: and };
  const [total, groups] = await Promise.all([
    db.scimGroup.count({ where }),
    query.count === 0
      ? Promise.resolve([])
      : db.scimGroup.findMany({ where, orderBy: [{ createdAt: "asc" }, { id: "asc" }], skip: query.startIndex - 1, take: query.count }),
  ]);
  return listResponse(await Promise.all(groups.map((g) => render(g, query))), total, query.startIndex);
}

/** Each id must be a person Latchkey knows: an unknown one is refused before anything changes. */
async function checkPeople(ids: string[], error: (id: string) => Error, deletedToo = false): Promise<void> {
  if (!ids.length) return;
  const where = deletedToo ? { kind: "person" as const } : PEOPLE;
  const found = new Set(
    (await db.user.findMany({ where: { id: { in: ids.filter((i) => i.length <= 100) }, ...where }, select: { id: true } })).map((u) => u.id),
  );
  const unknown = ids.find((i) => !found.has(i));
  if (unknown) throw error(unknown);
}

async function checkUnique(state: GroupState, id: string | null): Promise<void> {
  const byName = await db.scimGroup.findUnique({ where: { displayName: state.displayName } });
  if (byName && byName.id !== id) throw uniqueness(`A group named ${JSON.stringify(state.displayName)} exists.`);
  const byExternal = state.externalId ? await db.scimGroup.findUnique({ where: { externalId: state.externalId } }) : null;
  if (byExternal && byExternal.id !== id) throw uniqueness(`externalId ${JSON.stringify(state.externalId)} is taken.`);
}

/**
 * Moves people in and out of a group name through the directory: members before lose
 * `from`, members after gain `to` (so on a rename those who stay swap one for the other).
 * Each person gets only what changes for them, as a join and a leave the directory applies
 * under their row lock: a change to the same person's other groups by another instance at
 * the same moment is kept, not overwritten with a list read before it committed.
 */
async function applyMembership(who: Principal, change: { from: string | null; to: string | null; before: string[]; after: string[] }): Promise<void> {
  const before = new Set(change.before);
  const after = new Set(change.after);
  for (const userId of new Set([...before, ...after])) {
    const leaves = before.has(userId) && change.from !== null && (!after.has(userId) || change.to !== change.from) ? [change.from] : [];
    const joins = after.has(userId) && change.to !== null && (!before.has(userId) || change.to !== change.from) ? [change.to] : [];
    // Nothing to do for a person who already is where the change puts them (checked again under the lock).
    const user = await db.user.findUnique({ where: { id: userId }, select: { groups: true } });
    if (!user || (joins.every((g) => user.groups.includes(g)) && !leaves.some((g) => user.groups.includes(g)))) continue;
    await applyDirectoryChange({ userId, groupsAdd: joins, groupsRemove: leaves, source: "scim", actor: actorOf(who) });
  }
}

/** POST /Groups: the listed members join; nobody leaves a group because it was created. */
export function createGroup(who: Principal, body: unknown) {
  const state = groupFromBody(body);
  return serially(async () => {
    await checkUnique(state, null);
    await checkPeople(state.members, (id) => invalidValue(`No user with id ${JSON.stringify(id.slice(0, 100))}.`));
    const group = await db.$transaction(async (tx) => {
      const row = await tx.scimGroup.create({ data: { displayName: state.displayName, externalId: state.externalId } });
      await recordEvent(tx, {
        actor: actorOf(who),
        action: "scim.group.created",
        data: { groupId: row.id, displayName: row.displayName, externalId: row.externalId, members: state.members },
      });
      return row;
    });
    const current = (await membersOf(state.displayName)).map((m) => m.id);
    await applyMembership(who, { from: null, to: state.displayName, before: current, after: [...new Set([...current, ...state.members])] });
    return render(group, { attributes: null, excluded: [] });
  });
}

/** People first, then the group's row: a retry after a failure half-way finds the people not yet moved. */
async function change(who: Principal, group: ScimGroup, state: GroupState, before: string[], action: string) {
  await checkUnique(state, group.id);
  await checkPeople(
    state.members.filter((m) => !before.includes(m)),
    (id) => invalidValue(`No user with id ${JSON.stringify(id.slice(0, 100))}.`),
  );
  const renamed = state.displayName !== group.displayName;
  await applyMembership(who, { from: group.displayName, to: state.displayName, before, after: state.members });
  const added = state.members.filter((m) => !before.includes(m));
  const removed = before.filter((m) => !state.members.includes(m));
  const updated = await db.$transaction(async (tx) => {
    const row = await tx.scimGroup.update({ where: { id: group.id }, data: { displayName: state.displayName, externalId: state.externalId } });
    await recordEvent(tx, {
      actor: actorOf(who),
      action,
      data: {
        groupId: group.id,
        displayName: state.displayName,
        ...(renamed ? { renamedFrom: group.displayName } : {}),
        externalId: state.externalId,
        added,
        removed,
      },
    });
    return row;
  });
  return updated;
}

/** PUT /Groups/{id}: name and members exactly as sent. */
export function replaceGroup(who: Principal, id: string, body: unknown) {
  const state = groupFromBody(body);
  return serially(async () => {
    const group = await groupById(id);
    const before = (await membersOf(group.displayName)).map((m) => m.id);
    return render(await change(who, group, state, before, "scim.group.replaced"), { attributes: null, excluded: [] });
  });
}

/** PATCH /Groups/{id}: Okta's replace of the whole value and member removal by path, Entra's member add and remove. */
export function patchGroupResource(who: Principal, id: string, body: unknown) {
  const operations = parsePatch(body);
  return serially(async () => {
    const group = await groupById(id);
    const before = (await membersOf(group.displayName)).map((m) => m.id);
    const { state, removals } = patchGroup({ displayName: group.displayName, externalId: group.externalId, members: before }, operations, id);
    // A person deleted through SCIM may still be named in a removal the provider sends afterwards.
    await checkPeople([...new Set(removals)], (missing) => noTarget(`No user with id ${JSON.stringify(missing.slice(0, 100))}.`), true);
    await change(who, group, state, before, "scim.group.patched");
  });
}

/** DELETE /Groups/{id}: everyone in it leaves it, through the directory; then the group goes. */
export function deleteGroup(who: Principal, id: string) {
  return serially(async () => {
    const group = await groupById(id);
    const before = (await membersOf(group.displayName)).map((m) => m.id);
    await applyMembership(who, { from: group.displayName, to: null, before, after: [] });
    await db.$transaction(async (tx) => {
      await tx.scimGroup.delete({ where: { id } });
      await recordEvent(tx, { actor: actorOf(who), action: "scim.group.deleted", data: { groupId: id, displayName: group.displayName, removed: before } });
    });
  });
}
