/**
 * The SCIM Group resource: a name the policy's roles refer to, and its members. Okta
 * pushes groups with `replace` of the whole value and removes members by the path
 * `members[value eq "..."]`; Entra adds and removes members with `path: "members"` and a
 * list of values. Both are read here as pure changes of a plain state.
 */
import { invalidPath, invalidValue, mutability, noTarget } from "./errors";
import { CORE_GROUP } from "./filter";
import { checkSchemas, checkText, expand, isObject, lowerKeys, toOptionalText, toText, type Operation } from "./patch-op";

export interface GroupState {
  displayName: string;
  externalId: string | null;
  /** Latchkey user ids (the SCIM ids of the members). */
  members: string[];
}

const MAX_MEMBERS = 10_000;

/** Member ids from `[{"value": "..."}]`. */
export function memberIds(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length > MAX_MEMBERS) throw invalidValue(`At most ${MAX_MEMBERS} members in one call.`);
  return list.map((m) => {
    if (!isObject(m)) throw invalidValue('Each member is an object: {"value": "<user id>"}.');
    const fields = lowerKeys(m);
    for (const key of Object.keys(fields))
      if (!["value", "display", "$ref", "type"].includes(key)) throw invalidValue(`A member has no attribute ${JSON.stringify(key.slice(0, 100))}.`);
    if (fields.type !== undefined && fields.type !== "User") throw invalidValue("Members are Users; groups inside groups are not supported.");
    return toText(fields.value, "members.value", 100);
  });
}

export function groupFromBody(body: unknown): GroupState {
  if (!isObject(body)) throw invalidValue("A Group is a JSON object.");
  checkText(body);
  checkSchemas(body, [CORE_GROUP], CORE_GROUP);
  const state: Partial<GroupState> = { externalId: null, members: [] };
  for (const [key, value] of Object.entries(lowerKeys(body))) {
    if (key === "displayname") state.displayName = toText(value, "displayName");
    else if (key === "externalid") state.externalId = toOptionalText(value, "externalId");
    else if (key === "members") state.members = value === null ? [] : [...new Set(memberIds(value))];
    else if (!["schemas", "id", "meta"].includes(key)) throw invalidValue(`A Group has no attribute ${JSON.stringify(key.slice(0, 100))}.`);
  }
  if (!state.displayName) throw invalidValue("displayName is required.");
  return state as GroupState;
}

/** The new state, and the member ids that removals named (each must be a user: noTarget otherwise). */
export function patchGroup(current: GroupState, operations: Operation[], id: string): { state: GroupState; removals: string[] } {
  const state = { ...current, members: [...current.members] };
  const removals: string[] = [];
  for (const operation of operations.flatMap(expand)) {
    const { op, path, value } = operation;
    const { attr, sub, filter, schema } = path!;
    if (schema && schema !== CORE_GROUP) throw invalidPath(`A Group has no attribute ${JSON.stringify(operation.pathText?.slice(0, 200))}.`);
    checkText(value);
    switch (attr) {
      case "displayname":
        if (op === "remove") throw invalidValue("displayName is required and cannot be removed.");
        state.displayName = toText(value, "displayName");
        break;
      case "externalid":
        state.externalId = op === "remove" ? null : toOptionalText(value, "externalId");
        break;
      case "members": {
        if (sub && sub !== "value") throw invalidPath(`members has no attribute ${JSON.stringify(sub)} Latchkey changes.`);
        if (filter) {
          // Okta: {"op": "remove", "path": "members[value eq \"<id>\"]"}.
          const ids = filter.filter((c) => c.attr === "members.value").map((c) => c.value);
          if (filter.length !== 1 || ids.length !== 1 || typeof ids[0] !== "string")
            throw invalidPath('Select members by value only: members[value eq "<user id>"].');
          if (op !== "remove") throw invalidPath("Add members with path members and a list of values.");
          removals.push(ids[0]);
          state.members = state.members.filter((m) => m !== ids[0]);
          break;
        }
        if (op === "remove") {
          // Entra sends the members to remove as the value; no value removes them all.
          if (value === undefined || value === null) state.members = [];
          else {
            const gone = new Set(memberIds(value));
            removals.push(...gone);
            state.members = state.members.filter((m) => !gone.has(m));
          }
        } else {
          const ids = value === null ? [] : memberIds(value);
          state.members = [...new Set(op === "replace" ? ids : [...state.members, ...ids])];
        }
        break;
      }
      case "id":
        if (op !== "remove" && value === id) break;
        throw mutability("id is read-only.");
      case "schemas":
      case "meta":
        break;
      default:
        throw invalidPath(`A Group has no attribute ${JSON.stringify(attr)}.`);
    }
  }
  if (state.members.length > MAX_MEMBERS) throw invalidValue(`A group has at most ${MAX_MEMBERS} members in Latchkey.`);
  return { state, removals };
}

/** The one kind of filter condition a remove may name that matched no member: noTarget, as RFC 7644 asks. */
export function missingMembers(ids: string[], known: Set<string>): void {
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length) throw noTarget(`No user with id ${JSON.stringify(unknown[0]!.slice(0, 100))}.`);
}
