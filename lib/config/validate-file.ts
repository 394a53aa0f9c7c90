import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { z } from "zod";
import { configNouns } from "./nouns";

/**
 * Validates a configuration file (YAML, or JSON, which YAML reads too) against a strict zod
 * schema, and words each problem so a person can fix it without reading code: the file, line
 * and column, the path inside the file, and for an unknown key the nearest valid one. A
 * mistyped key is the most dangerous mistake in an access policy, because it looks reviewed.
 */
export type FileCheck<T> = { ok: true; data: T } | { ok: false; problems: string[] };

type Path = readonly PropertyKey[];
type AnySchema = z.core.$ZodType;

/** The parts of a schema's definition this file walks; which are present depends on its type. */
interface Def {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  shape?: Record<string, AnySchema>;
  valueType?: AnySchema;
  element?: AnySchema;
}

// zod types each definition by its schema's kind; read here for any kind, so by the fields named in Def.
const defOf = (schema: AnySchema): Def => schema._zod.def as unknown as Def;

const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch", "nonoptional"]);

/** The schema a value at this place must meet, through optionals, defaults and transforms. */
function unwrap(schema: AnySchema): AnySchema {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (WRAPPERS.has(def.type) && def.innerType) current = def.innerType;
    else if (def.type === "pipe" && def.in) current = def.in;
    else return current;
  }
}

function schemaAt(root: AnySchema, path: Path): AnySchema | undefined {
  let current: AnySchema | undefined = root;
  for (const key of path) {
    if (!current) return undefined;
    const def = defOf(unwrap(current));
    if (def.type === "object") current = def.shape?.[String(key)];
    else if (def.type === "record") current = def.valueType;
    else if (def.type === "array") current = def.element;
    else return undefined;
  }
  return current;
}

/** The schema node's registered noun: the wrapper first (where a clone keeps it), then what it wraps. */
function nounOf(schema: AnySchema): string {
  let current: AnySchema = schema;
  for (;;) {
    const noun = configNouns.get(current as z.ZodType)?.noun;
    if (noun) return noun;
    const def = defOf(current);
    const next = WRAPPERS.has(def.type) ? def.innerType : def.type === "pipe" ? def.in : undefined;
    if (!next) return "this object";
    current = next;
  }
}

/** Edit distance where a changed letter case costs nothing and a swap of neighbours costs one. */
export function keyDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[x.length]![y.length]!;
}

/** The valid key closest to a mistyped one, when it is close enough to be what was meant. */
export function nearestKey(key: string, valid: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  let best: { key: string; distance: number } | undefined;
  for (const candidate of valid) {
    const distance = keyDistance(key, candidate);
    if (distance <= limit && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

function unknownKeyMessage(root: AnySchema, path: Path, key: string): string {
  const schema = schemaAt(root, path);
  const def = schema ? defOf(unwrap(schema)) : undefined;
  const valid = Object.keys(def?.shape ?? {});
  const suggestion = nearestKey(key, valid);
  const what = schema ? nounOf(schema) : "this object";
  return suggestion
    ? `\`${key}\` is not a key of ${what}; did you mean \`${suggestion}\`?`
    : `\`${key}\` is not a key of ${what} (its keys: ${valid.join(", ")})`;
}

/** Where in the text a path points: the deepest node of it that exists (or, for an unknown key, the key itself). */
function positionOf(doc: Document, lines: LineCounter, path: Path, key?: string): [number, number] {
  let node: Node | undefined;
  for (let depth = path.length; depth >= 0 && !node; depth--) {
    const found = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as unknown[], true);
    if (found && typeof found === "object" && "range" in found) node = found as Node;
  }
  if (key !== undefined && node && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (pair && isScalar(pair.key)) node = pair.key;
  }
  const offset = node?.range?.[0] ?? 0;
  const { line, col } = lines.linePos(offset);
  return [line, col];
}

const pathText = (path: Path) => (path.length ? path.map(String).join(".") : "(top level)");

/** Parses the text and checks it; each problem reads "file:line:col: path: what is wrong". */
export function checkConfigText<S extends z.ZodType>(text: string, file: string, schema: S): FileCheck<z.output<S>> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map(
        (e) => `${file}:${e.linePos?.[0] ? `${e.linePos[0].line}:${e.linePos[0].col}` : "1:1"}: not valid YAML: ${e.message.split("\n")[0]}`,
      ),
    };
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (error) {
    // yaml refuses to expand an alias bomb (maxAliasCount) here rather than at parse time.
    return { ok: false, problems: [`${file}:1:1: not valid YAML: ${(error as Error).message}`] };
  }
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, data: result.data };
  const problems: Array<{ at: [number, number]; text: string }> = [];
  const add = (at: [number, number], path: Path, message: string) => problems.push({ at, text: `${file}:${at[0]}:${at[1]}: ${pathText(path)}: ${message}` });
  for (const issue of result.error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) add(positionOf(doc, lines, issue.path, key), issue.path, unknownKeyMessage(schema, issue.path, key));
    } else if (issue.code === "invalid_key" && issue.path.length > 0) {
      const key = String(issue.path[issue.path.length - 1]);
      const why = issue.issues.map((inner) => inner.message).join("; ");
      add(positionOf(doc, lines, issue.path.slice(0, -1), key), issue.path, `\`${key}\` is not a valid name here: ${why}`);
    } else if (issue.code === "invalid_type" && issue.path.length > 0 && doc.getIn(issue.path as unknown[]) === undefined) {
      const parent = schemaAt(schema, issue.path.slice(0, -1));
      add(positionOf(doc, lines, issue.path), issue.path, `is missing (a required key of ${parent ? nounOf(parent) : "this object"})`);
    } else {
      add(positionOf(doc, lines, issue.path), issue.path, issue.message);
    }
  }
  problems.sort((a, b) => a.at[0] - b.at[0] || a.at[1] - b.at[1]);
  return { ok: false, problems: problems.map((p) => p.text) };
}
