/**
 * The part of SCIM's filter and path grammar (RFC 7644 §3.4.2.2, §3.5.2) that identity
 * providers send: `userName eq "..."`, `externalId eq "..."`, `displayName eq "..."`,
 * conditions joined by `and`, and value paths such as `members[value eq "..."]` or
 * `emails[type eq "work"].value`. Anything else is refused as invalidFilter or
 * invalidPath, so a filter Latchkey does not understand never silently matches everyone.
 */
import { invalidFilter, invalidPath } from "./errors";

export const CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User";
export const CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group";
export const ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SCHEMAS = [CORE_USER, CORE_GROUP, ENTERPRISE_USER];

export type Scalar = string | number | boolean | null;
/** One `eq` comparison; `attr` is lower-case and dotted (`username`, `members.value`). */
export interface Condition {
  attr: string;
  value: Scalar;
}
/** A parsed attribute path: its schema (when named), attribute, sub-attribute and value filter. */
export interface AttrPath {
  schema?: string;
  attr: string;
  sub?: string;
  filter?: Condition[];
}

const MAX_LENGTH = 1000;
const OPERATORS = new Set(["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le", "pr"]);

type Token = { kind: "word"; text: string } | { kind: "string"; text: string } | { kind: "punct"; text: "[" | "]" | "(" | ")" };

function tokenize(input: string, fail: (m: string) => Error): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === " " || c === "\t") {
      i++;
    } else if (c === "[" || c === "]" || c === "(" || c === ")") {
      tokens.push({ kind: "punct", text: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < input.length && input[j] !== '"') j += input[j] === "\\" ? 2 : 1;
      if (j >= input.length) throw fail("A quoted value is not closed.");
      try {
        tokens.push({ kind: "string", text: JSON.parse(input.slice(i, j + 1)) as string });
      } catch {
        throw fail("A quoted value has a broken escape.");
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < input.length && !' \t[]()"'.includes(input[j]!)) j++;
      tokens.push({ kind: "word", text: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

/** Splits `urn:...:User:name.givenName` into its schema and `name.givenName`. */
function splitSchema(text: string): { schema?: string; rest: string } {
  const lower = text.toLowerCase();
  for (const schema of SCHEMAS) if (lower.startsWith(`${schema.toLowerCase()}:`)) return { schema, rest: text.slice(schema.length + 1) };
  return { rest: text };
}

const ATTR = /^[A-Za-z][\w$-]*(\.[A-Za-z][\w$-]*)?$/;

function attrName(text: string, fail: (m: string) => Error): { schema?: string; attr: string; sub?: string } {
  const { schema, rest } = splitSchema(text);
  if (!ATTR.test(rest)) throw fail(`${JSON.stringify(text.slice(0, 100))} is not an attribute name.`);
  const [attr, sub] = rest.toLowerCase().split(".");
  return { schema, attr: attr!, ...(sub ? { sub } : {}) };
}

function literal(token: Token | undefined, fail: (m: string) => Error): Scalar {
  if (!token) throw fail("A comparison has no value.");
  if (token.kind === "string") return token.text;
  if (token.kind === "word") {
    if (token.text === "true") return true;
    if (token.text === "false") return false;
    if (token.text === "null") return null;
    if (/^-?\d+(\.\d+)?$/.test(token.text)) return Number(token.text);
  }
  throw fail(`Compare with a quoted string, a number, true, false or null, not ${JSON.stringify((token.text ?? "").slice(0, 100))}.`);
}

/** Parses `cond (and cond)*` from position i, stopping before `]`, `)` or the end. */
function conjunction(tokens: Token[], start: number, prefix: string | null, fail: (m: string) => Error): { conditions: Condition[]; next: number } {
  const conditions: Condition[] = [];
  let i = start;
  for (;;) {
    const t = tokens[i];
    if (t?.kind === "punct" && t.text === "(") {
      const inner = conjunction(tokens, i + 1, prefix, fail);
      if (tokens[inner.next]?.text !== ")") throw fail("A parenthesis is not closed.");
      conditions.push(...inner.conditions);
      i = inner.next + 1;
    } else {
      if (t?.kind !== "word") throw fail("Expected an attribute name.");
      const name = attrName(t.text, fail);
      const path = (prefix ? [prefix, name.attr] : [name.attr, name.sub]).filter(Boolean).join(".");
      const after = tokens[i + 1];
      if (after?.kind === "punct" && after.text === "[") {
        if (prefix) throw fail("Value filters cannot be nested.");
        const inner = conjunction(tokens, i + 2, name.attr, fail);
        if (tokens[inner.next]?.text !== "]") throw fail("A value filter is not closed with ].");
        conditions.push(...inner.conditions);
        i = inner.next + 1;
      } else {
        const op = after?.kind === "word" ? after.text.toLowerCase() : "";
        if (!OPERATORS.has(op)) throw fail(`Expected an operator after ${JSON.stringify(t.text.slice(0, 100))}.`);
        if (op !== "eq") throw fail(`Latchkey supports the eq operator only, not ${op}.`);
        conditions.push({ attr: path, value: literal(tokens[i + 2], fail) });
        i += 3;
      }
    }
    const joiner = tokens[i];
    if (joiner?.kind === "word" && joiner.text.toLowerCase() === "and") {
      i++;
      continue;
    }
    if (joiner?.kind === "word" && ["or", "not"].includes(joiner.text.toLowerCase()))
      throw fail(`Latchkey supports conditions joined by and only, not ${joiner.text.toLowerCase()}.`);
    return { conditions, next: i };
  }
}

/** A list filter (`?filter=`): the conditions that must all hold. */
export function parseFilter(input: string): Condition[] {
  if (input.length > MAX_LENGTH) throw invalidFilter(`A filter may be at most ${MAX_LENGTH} characters.`);
  const tokens = tokenize(input, invalidFilter);
  if (tokens.length === 0) throw invalidFilter("The filter is empty.");
  const { conditions, next } = conjunction(tokens, 0, null, invalidFilter);
  if (next !== tokens.length) throw invalidFilter("The filter has text Latchkey does not understand after its conditions.");
  return conditions;
}

/** A PATCH path: `attr`, `attr.sub`, `urn:...:attr`, `attr[filter]` or `attr[filter].sub`. */
export function parsePath(input: string): AttrPath {
  if (input.length > MAX_LENGTH) throw invalidPath(`A path may be at most ${MAX_LENGTH} characters.`);
  const open = input.indexOf("[");
  if (open < 0) return attrName(input.trim(), invalidPath);
  const close = input.lastIndexOf("]");
  if (close < open) throw invalidPath("A value filter in the path is not closed with ].");
  const head = attrName(input.slice(0, open).trim(), invalidPath);
  if (head.sub) throw invalidPath("A value filter follows an attribute, not a sub-attribute.");
  const tokens = tokenize(input.slice(open + 1, close), invalidPath);
  const { conditions, next } = conjunction(tokens, 0, head.attr, invalidPath);
  if (next !== tokens.length || conditions.length === 0) throw invalidPath("The value filter in the path is not one Latchkey understands.");
  const tail = input.slice(close + 1);
  if (tail && !/^\.[A-Za-z][\w$-]*$/.test(tail)) throw invalidPath(`${JSON.stringify(tail.slice(0, 100))} after the value filter is not a sub-attribute.`);
  return { ...head, filter: conditions, ...(tail ? { sub: tail.slice(1).toLowerCase() } : {}) };
}
