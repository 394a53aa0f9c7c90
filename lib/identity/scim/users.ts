import "server-only";
/**
 * SCIM Users on Latchkey's people: create (or link a person who already signed in), read,
 * list with the filters providers send, replace, patch and delete. What the provider says
 * about identity is kept here (ScimUser, User's e-mail and name) in one audited
 * transaction; whether the person is active goes through the directory
 * (applyDirectoryChange), which ends their access at once when they are deactivated.
 */
import type { Prisma, ScimUser, User } from "@prisma/client";
import { actorOf, recordEvent } from "../../audit/record";
import { db, type Tx } from "../../db";
import type { Principal } from "../../policy/evaluate";
import { applyDirectoryChange } from "../directory";
import { invalidFilter, scimNotFound, uniqueness } from "./errors";
import { CORE_USER, parseFilter } from "./filter";
import { listResponse, meta, project, type ListQuery } from "./listing";
import { parsePatch } from "./patch-op";
import { serially } from "./serial";
import { patchUser, userFromBody, type UserState } from "./user-resource";

type Person = User & { scim: ScimUser | null };

/** People only: service identities are Latchkey's own and never the directory's to change. */
const PERSON: Prisma.UserWhereInput = { kind: "person", OR: [{ scim: null }, { scim: { deletedAt: null } }] };

function stateOf(user: Person): UserState {
  return {
    userName: user.scim?.userName ?? user.email,
    externalId: user.scim?.externalId ?? null,
    active: user.active,
    displayName: user.scim?.displayName ?? user.name,
    givenName: user.scim?.givenName ?? null,
    familyName: user.scim?.familyName ?? null,
    email: user.email,
  };
}

async function render(user: Person): Promise<Record<string, unknown>> {
  const state = stateOf(user);
  const groups = user.groups.length ? await db.scimGroup.findMany({ where: { displayName: { in: user.groups } }, orderBy: { displayName: "asc" } }) : [];
  return {
    schemas: [CORE_USER],
    id: user.id,
    ...(state.externalId ? { externalId: state.externalId } : {}),
    userName: state.userName,
    ...(state.givenName || state.familyName
      ? { name: { ...(state.givenName ? { givenName: state.givenName } : {}), ...(state.familyName ? { familyName: state.familyName } : {}) } }
      : {}),
    ...(state.displayName ? { displayName: state.displayName } : {}),
    emails: [{ value: state.email, type: "work", primary: true }],
    active: state.active,
    groups: groups.map((g) => ({ value: g.id, display: g.displayName, $ref: meta("Group", g.id, g.createdAt, g.updatedAt).location })),
    meta: meta("User", user.id, user.createdAt, user.scim && user.scim.updatedAt > user.updatedAt ? user.scim.updatedAt : user.updatedAt),
  };
}

async function person(id: string): Promise<Person> {
  const user = id.length <= 100 ? await db.user.findFirst({ where: { id, ...PERSON }, include: { scim: true } }) : null;
  if (!user) throw scimNotFound("User", id);
  return user;
}

export async function getUser(id: string, view: Parameters<typeof project>[1]) {
  return project(await render(await person(id)), view);
}

function whereOf(filter: string | undefined): Prisma.UserWhereInput {
  if (!filter) return PERSON;
  const and: Prisma.UserWhereInput[] = [PERSON];
  for (const { attr, value } of parseFilter(filter)) {
    if (attr === "active") {
      if (typeof value !== "boolean") throw invalidFilter("active compares with true or false.");
      and.push({ active: value });
      continue;
    }
    if (typeof value !== "string") throw invalidFilter(`${attr} compares with a quoted string.`);
    const lower = value.toLowerCase();
    if (attr === "id") and.push({ id: value });
    else if (attr === "username") and.push({ OR: [{ scim: { userName: lower } }, { scim: null, email: lower }] });
    else if (attr === "externalid") and.push({ scim: { externalId: value } });
    else if (attr === "displayname") and.push({ OR: [{ scim: { displayName: value } }, { scim: null, name: value }] });
    else if (attr === "emails" || attr === "emails.value") and.push({ email: lower });
    else if (attr !== "emails.type")
      throw invalidFilter(`Latchkey filters Users by id, userName, externalId, displayName, emails.value and active, not ${attr}.`);
  }
  return { AND: and };
}

export async function listUsers(query: ListQuery) {
  const where = whereOf(query.filter);
  const [total, users] = await Promise.all([
    db.user.count({ where }),
    query.count === 0
      ? Promise.resolve([])
      : db.user.findMany({ where, include: { scim: true }, orderBy: [{ createdAt: "asc" }, { id: "asc" }], skip: query.startIndex - 1, take: query.count }),
  ]);
  return listResponse(await Promise.all(users.map(async (u) => project(await render(u), query))), total, query.startIndex);
}

/** The provider's identifiers must stay unique across people, as must e-mails. */
async function checkUnique(tx: Tx, state: UserState, userId: string | null): Promise<void> {
  // One statement at a time: a transaction is one connection.
  const byName = await tx.scimUser.findUnique({ where: { userName: state.userName } });
  const byExternal = state.externalId ? await tx.scimUser.findUnique({ where: { externalId: state.externalId } }) : null;
  const byEmail = await tx.user.findUnique({ where: { email: state.email } });
  if (byName && byName.userId !== userId) throw uniqueness(`userName ${JSON.stringify(state.userName)} is taken.`);
  if (byExternal && byExternal.userId !== userId) throw uniqueness(`externalId ${JSON.stringify(state.externalId)} is taken.`);
  if (byEmail && byEmail.id !== userId) throw uniqueness(`The e-mail ${JSON.stringify(state.email)} belongs to someone else.`);
  const takenName = await tx.user.findFirst({ where: { email: state.userName, scim: null, ...(userId ? { NOT: { id: userId } } : {}) } });
  if (takenName) throw uniqueness(`userName ${JSON.stringify(state.userName)} is another person's e-mail.`);
}

const fields = (state: UserState) => ({
  userName: state.userName,
  externalId: state.externalId,
  displayName: state.displayName,
  givenName: state.givenName,
  familyName: state.familyName,
  deletedAt: null,
});
const nameOf = (state: UserState) => state.displayName ?? ([state.givenName, state.familyName].filter(Boolean).join(" ") || null);

/** Whether the person is active goes through the directory, which ends their access when they are not. */
async function applyActive(who: Principal, userId: string, before: boolean, after: boolean): Promise<void> {
  if (before === after) return;
  await applyDirectoryChange({ userId, active: after, source: "scim", actor: actorOf(who) });
}

/** POST /Users: a new person, or the person who already signed in with that e-mail, now provisioned. */
export function createUser(who: Principal, body: unknown) {
  const state = userFromBody(body);
  return serially(async () => {
    const { userId, activeBefore } = await db.$transaction(async (tx) => {
      const existing = await tx.user.findUnique({ where: { email: state.email }, include: { scim: true } });
      if (existing && (existing.kind !== "person" || (existing.scim && !existing.scim.deletedAt)))
        throw uniqueness(`A user with the e-mail ${JSON.stringify(state.email)} exists.`);
      await checkUnique(tx, state, existing?.id ?? null);
      const user = existing ?? (await tx.user.create({ data: { email: state.email, name: nameOf(state) } }));
      if (existing && nameOf(state)) await tx.user.update({ where: { id: user.id }, data: { name: nameOf(state) } });
      await tx.scimUser.upsert({ where: { userId: user.id }, create: { userId: user.id, ...fields(state) }, update: fields(state) });
      await recordEvent(tx, {
        actor: actorOf(who),
        action: existing ? "scim.user.linked" : "scim.user.created",
        data: { userId: user.id, email: state.email, userName: state.userName, externalId: state.externalId, active: state.active },
      });
      return { userId: user.id, activeBefore: existing ? existing.active : true };
    });
    await applyActive(who, userId, activeBefore, state.active);
    return render(await person(userId));
  });
}

async function store(who: Principal, current: Person, state: UserState, action: string) {
  const before = stateOf(current);
  const changed = Object.fromEntries(Object.entries(state).filter(([k, v]) => before[k as keyof UserState] !== v && k !== "active"));
  if (Object.keys(changed).length) {
    await db.$transaction(async (tx) => {
      await checkUnique(tx, state, current.id);
      await tx.scimUser.upsert({ where: { userId: current.id }, create: { userId: current.id, ...fields(state) }, update: fields(state) });
      await tx.user.update({ where: { id: current.id }, data: { email: state.email, name: nameOf(state) ?? current.name } });
      await recordEvent(tx, { actor: actorOf(who), action, data: { userId: current.id, email: state.email, changed } });
    });
  }
  await applyActive(who, current.id, before.active, state.active);
  return render(await person(current.id));
}

/** PUT /Users/{id}: the whole resource as the provider has it now. */
export function replaceUser(who: Principal, id: string, body: unknown) {
  const state = userFromBody(body);
  return serially(async () => store(who, await person(id), state, "scim.user.replaced"));
}

/** PATCH /Users/{id}: Okta's and Entra's operations, deactivation included. */
export function patchUserResource(who: Principal, id: string, body: unknown) {
  const operations = parsePatch(body);
  return serially(async () => {
    const current = await person(id);
    return store(who, current, patchUser(stateOf(current), operations, id), "scim.user.patched");
  });
}

/**
 * DELETE /Users/{id}: the person is deactivated, leaves every group and leaves SCIM; their
 * history stays. Provisioned again later, they start with the groups the provider gives
 * them then, not the ones they had.
 */
export function deleteUser(who: Principal, id: string) {
  return serially(async () => {
    const current = await person(id);
    await db.$transaction(async (tx) => {
      const state = stateOf(current);
      await tx.scimUser.upsert({ where: { userId: id }, create: { userId: id, ...fields(state), deletedAt: new Date() }, update: { deletedAt: new Date() } });
      await recordEvent(tx, { actor: actorOf(who), action: "scim.user.deleted", data: { userId: id, email: current.email, userName: state.userName } });
    });
    await applyDirectoryChange({ userId: id, active: false, groups: [], source: "scim", actor: actorOf(who) });
  });
}
