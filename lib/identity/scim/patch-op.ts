/**
 * The PatchOp envelope (RFC 7644 §3.5.2) and the value checks shared by Users and Groups.
 * Providers differ in small ways that matter: Entra capitalises `Replace`, sends `active`
 * as the string "False", and sends attribute paths as keys of a path-less value; Okta sends
 * `{"op": "replace", "value": {"active": false}}`. Each is read here, once.
 */
import { hasUnsafeText, UNSAFE_TEXT } from "../../text";
import { invalidSyntax, invalidValue, noTarget } from "./errors";
import { parsePath, type AttrPath } from "./filter";

export const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
export const MAX_OPERATIONS = 1000;

export type OpName = "add" | "replace" | "remove";
export interface Operation {
  op: OpName;
  path?: AttrPath;
  /** The raw path, for messages. */
  pathText?: string;
  value?: unknown;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads `{schemas: [PatchOp], Operations: [...]}`; `Operations` is matched case-insensitively, as Entra sends it. */
export function parsePatch(body: unknown): Operation[] {
  if (!isObject(body)) throw invalidSyntax("A PATCH body is a JSON object with schemas and Operations.");
  checkSchemas(body, [PATCH_OP], PATCH_OP);
  const key = Object.keys(body).find((k) => k.toLowerCase() === "operations");
  const list = key ? body[key] : undefined;
  if (!Array.isArray(list) || list.length === 0) throw invalidSyntax("Operations must be a non-empty array.");
  if (list.length > MAX_OPERATIONS) throw invalidValue(`At most ${MAX_OPERATIONS} operations in one PATCH.`);
  for (const k of Object.keys(body))
    if (!["schemas", "operations"].includes(k.toLowerCase())) throw invalidSyntax(`A PATCH body has no attribute ${JSON.stringify(k.slice(0, 100))}.`);
  return list.map((raw, index) => {
    if (!isObject(raw)) throw invalidSyntax(`Operation ${index + 1} is not an object.`);
    const fields = lowerKeys(raw);
    for (const k of Object.keys(fields))
      if (!["op", "path", "value"].includes(k)) throw invalidSyntax(`Operation ${index + 1} has no attribute ${JSON.stringify(k.slice(0, 100))}.`);
    const op = typeof fields.op === "string" ? fields.op.toLowerCase() : "";
    if (op !== "add" && op !== "replace" && op !== "remove") throw invalidSyntax(`Operation ${index + 1}: op must be add, replace or remove.`);
    if (fields.path !== undefined && typeof fields.path !== "string") throw invalidSyntax(`Operation ${index + 1}: path must be a string.`);
    const pathText = typeof fields.path === "string" && fields.path.trim() !== "" ? fields.path : undefined;
    if (!pathText && op === "remove") throw noTarget(`Operation ${index + 1}: remove needs a path.`);
    if (!pathText && !isObject(fields.value)) throw invalidValue(`Operation ${index + 1}: without a path, the value must be an object of attributes.`);
    if (op !== "remove" && !("value" in fields)) throw invalidValue(`Operation ${index + 1}: ${op} needs a value.`);
    return { op, ...(pathText ? { path: parsePath(pathText), pathText } : {}), value: fields.value };
  });
}

/** A path-less add or replace is one operation per key of its value (Entra's keys can be paths themselves). */
export function expand(operation: Operation): Operation[] {
  if (operation.path) return [operation];
  return Object.entries(operation.value as Record<string, unknown>).map(([key, value]) => ({ op: operation.op, path: parsePath(key), pathText: key, value }));
}

export function lowerKeys(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object)) {
    const lower = k.toLowerCase();
    if (lower in out) throw invalidSyntax(`The attribute ${JSON.stringify(k.slice(0, 100))} appears twice.`);
    out[lower] = v;
  }
  return out;
}

/** `schemas` must be present, name the resource's schema and nothing Latchkey does not know. */
export function checkSchemas(body: Record<string, unknown>, known: string[], required: string): void {
  const key = Object.keys(body).find((k) => k.toLowerCase() === "schemas");
  const schemas = key ? body[key] : undefined;
  if (!Array.isArray(schemas) || !schemas.every((s) => typeof s === "string")) throw invalidSyntax(`schemas must be an array that names ${required}.`);
  const lower = known.map((k) => k.toLowerCase());
  for (const s of schemas as string[]) if (!lower.includes(s.toLowerCase())) throw invalidValue(`Unknown schema ${JSON.stringify(s.slice(0, 200))}.`);
  if (!(schemas as string[]).some((s) => s.toLowerCase() === required.toLowerCase())) throw invalidSyntax(`schemas must name ${required}.`);
}

export function checkText(body: unknown): void {
  if (hasUnsafeText(body)) throw invalidValue(UNSAFE_TEXT);
}

/** A boolean, or Entra's "True"/"False" strings. */
export function toBool(value: unknown, name: string): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "string" && /^(true|false)$/i.test(value)) return value.toLowerCase() === "true";
  throw invalidValue(`${name} must be true or false.`);
}

export function toText(value: unknown, name: string, max = 256): string {
  if (typeof value !== "string" || value.trim() === "") throw invalidValue(`${name} must be a non-empty string.`);
  if (value.length > max) throw invalidValue(`${name} may be at most ${max} characters.`);
  return value.trim();
}

export function toOptionalText(value: unknown, name: string, max = 256): string | null {
  if (value === null || value === undefined || value === "") return null;
  return toText(value, name, max);
}
