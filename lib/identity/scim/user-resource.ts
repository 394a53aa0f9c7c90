/**
 * The SCIM User resource as Latchkey keeps it: the few attributes that decide who a person
 * is (userName, externalId, e-mail, name, active), read from a POST or PUT body and changed
 * by PATCH operations, as pure functions over a plain state. Attributes of the core and
 * enterprise schemas that providers send by default (title, phone numbers, department,
 * manager...) are accepted and not kept; an attribute no schema defines is refused.
 */
import { invalidPath, invalidValue, mutability } from "./errors";
import { CORE_USER, ENTERPRISE_USER } from "./filter";
import { checkSchemas, checkText, expand, isObject, lowerKeys, toBool, toOptionalText, toText, type Operation } from "./patch-op";

export interface UserState {
  userName: string;
  externalId: string | null;
  active: boolean;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  /** The person's e-mail in Latchkey, which sign-in matches. */
  email: string;
}

/** Core User attributes Latchkey accepts without keeping them. */
const IGNORED = new Set([
  "nickname",
  "profileurl",
  "title",
  "usertype",
  "preferredlanguage",
  "locale",
  "timezone",
  "phonenumbers",
  "ims",
  "photos",
  "addresses",
  "entitlements",
  "roles",
  "x509certificates",
  "password",
]);
const ENTERPRISE = new Set(["employeenumber", "costcenter", "organization", "division", "department", "manager"]);
const NAME_KEPT = new Set(["givenname", "familyname"]);
const NAME_IGNORED = new Set(["formatted", "middlename", "honorificprefix", "honorificsuffix"]);
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}$/;

export function toEmail(value: unknown, name = "emails.value"): string {
  const text = toText(value, name, 254).toLowerCase();
  if (!EMAIL.test(text)) throw invalidValue(`${name} must be an e-mail address.`);
  return text;
}

function emailOf(list: unknown): string | null {
  if (!Array.isArray(list)) throw invalidValue("emails must be an array.");
  if (list.length > 100) throw invalidValue("At most 100 emails.");
  const entries = list.map((e) => {
    if (!isObject(e)) throw invalidValue("Each of emails is an object with a value.");
    return lowerKeys(e);
  });
  const chosen = entries.find((e) => e.primary === true || e.primary === "true" || e.primary === "True") ?? entries[0];
  return chosen ? toEmail(chosen.value) : null;
}

function readName(value: unknown, state: Partial<UserState>): void {
  if (value === null) {
    state.givenName = null;
    state.familyName = null;
    return;
  }
  if (!isObject(value)) throw invalidValue("name must be an object.");
  for (const [key, part] of Object.entries(lowerKeys(value))) {
    if (key === "givenname") state.givenName = toOptionalText(part, "name.givenName");
    else if (key === "familyname") state.familyName = toOptionalText(part, "name.familyName");
    else if (!NAME_IGNORED.has(key)) throw invalidValue(`name has no attribute ${JSON.stringify(key.slice(0, 100))}.`);
  }
}

function checkEnterprise(value: unknown): void {
  if (value === null || value === undefined) return;
  if (!isObject(value)) throw invalidValue(`${ENTERPRISE_USER} must be an object.`);
  for (const key of Object.keys(lowerKeys(value)))
    if (!ENTERPRISE.has(key)) throw invalidValue(`${ENTERPRISE_USER} has no attribute ${JSON.stringify(key.slice(0, 100))}.`);
}

/** The state a POST or PUT body describes. */
export function userFromBody(body: unknown): UserState {
  if (!isObject(body)) throw invalidValue("A User is a JSON object.");
  checkText(body);
  checkSchemas(body, [CORE_USER, ENTERPRISE_USER], CORE_USER);
  const state: Partial<UserState> = { externalId: null, active: true, displayName: null, givenName: null, familyName: null };
  let email: string | null = null;
  for (const [key, value] of Object.entries(lowerKeys(body))) {
    if (key === "username") state.userName = toText(value, "userName").toLowerCase();
    else if (key === "externalid") state.externalId = toOptionalText(value, "externalId");
    else if (key === "active") state.active = toBool(value, "active");
    else if (key === "displayname") state.displayName = toOptionalText(value, "displayName");
    else if (key === "name") readName(value, state);
    else if (key === "emails") email = emailOf(value);
    else if (key === ENTERPRISE_USER.toLowerCase()) checkEnterprise(value);
    // Read-only attributes in a request are ignored (RFC 7643 §2.2).
    else if (!["schemas", "id", "meta", "groups"].includes(key) && !IGNORED.has(key))
      throw invalidValue(`A User has no attribute ${JSON.stringify(key.slice(0, 100))}.`);
  }
  if (!state.userName) throw invalidValue("userName is required.");
  state.email = email ?? (EMAIL.test(state.userName) ? state.userName : undefined);
  if (!state.email) throw invalidValue("Latchkey needs an e-mail address: send emails, or a userName that is one.");
  return state as UserState;
}

/** Applies PATCH operations to a copy of the state (Okta's and Entra's shapes included). */
export function patchUser(current: UserState, operations: Operation[], id: string): UserState {
  const state = { ...current };
  for (const operation of operations.flatMap(expand)) {
    const { op, path, value } = operation;
    const where = operation.pathText ?? "";
    const enterprise = path!.schema === ENTERPRISE_USER || where.toLowerCase() === ENTERPRISE_USER.toLowerCase();
    if (enterprise) {
      if (path!.schema === ENTERPRISE_USER && !ENTERPRISE.has(path!.attr))
        throw invalidPath(`${ENTERPRISE_USER} has no attribute ${JSON.stringify(path!.attr)}.`);
      if (path!.schema !== ENTERPRISE_USER && op !== "remove") checkEnterprise(value);
      continue;
    }
    const { attr, sub, filter } = path!;
    if (filter && !["emails", ...IGNORED].includes(attr)) throw invalidPath(`Latchkey does not filter ${attr} in a path.`);
    checkText(value);
    switch (attr) {
      case "active":
        if (op === "remove") throw invalidValue("active cannot be removed; replace it with false.");
        state.active = toBool(value, "active");
        break;
      case "username":
        if (op === "remove") throw invalidValue("userName is required and cannot be removed.");
        state.userName = toText(value, "userName").toLowerCase();
        break;
      case "externalid":
        state.externalId = op === "remove" ? null : toOptionalText(value, "externalId");
        break;
      case "displayname":
        state.displayName = op === "remove" ? null : toOptionalText(value, "displayName");
        break;
      case "name":
        if (!sub) readName(op === "remove" ? null : value, state);
        else if (NAME_KEPT.has(sub)) state[sub === "givenname" ? "givenName" : "familyName"] = op === "remove" ? null : toOptionalText(value, `name.${sub}`);
        else if (!NAME_IGNORED.has(sub)) throw invalidPath(`name has no attribute ${JSON.stringify(sub)}.`);
        break;
      case "emails":
        if (op === "remove") throw invalidValue("Latchkey needs an e-mail address; emails cannot be removed.");
        if (sub === "value") state.email = toEmail(value);
        else if (sub && !["type", "primary", "display"].includes(sub)) throw invalidPath(`emails has no attribute ${JSON.stringify(sub)}.`);
        else if (!sub && filter) throw invalidPath("Name the sub-attribute: emails[...].value.");
        else if (!sub) state.email = emailOf(Array.isArray(value) ? value : [value]) ?? state.email;
        break;
      case "groups":
        throw mutability("groups is read-only on a User; change the group's members instead.");
      case "id":
      case "meta":
        if (op !== "remove" && (attr !== "id" || value === id)) break;
        throw mutability(`${attr} is read-only.`);
      case "schemas":
        break;
      default:
        if (!IGNORED.has(attr)) throw invalidPath(`A User has no attribute ${JSON.stringify(attr)}.`);
    }
  }
  return state;
}
