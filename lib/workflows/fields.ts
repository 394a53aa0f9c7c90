import { z } from "zod";

/**
 * Describes a workflow's form from its zod schema, so the form is derived from the
 * schema instead of written twice. Field labels, help and special kinds come from
 * `.meta({ label, help, kind, optionsFrom })` on each field.
 */
export type FieldKind = "text" | "longtext" | "number" | "select" | "multiselect" | "duration" | "boolean";

export interface FieldMeta {
  label?: string;
  help?: string;
  kind?: "longtext" | "duration";
  /** Options resolved at run time: the person's targets, the chosen target's roles, or an integration's list. */
  optionsFrom?: "policy:targets" | "policy:roles" | `integration:${string}`;
  placeholder?: string;
}

export interface FieldDescriptor {
  name: string;
  label: string;
  help?: string;
  placeholder?: string;
  kind: FieldKind;
  required: boolean;
  options?: string[];
  optionsFrom?: FieldMeta["optionsFrom"];
  defaultValue?: unknown;
}

interface Def {
  type: string;
  innerType?: { _zod: { def: Def } } & z.ZodType;
  element?: { _zod: { def: Def } } & z.ZodType;
  entries?: Record<string, string>;
  defaultValue?: unknown;
}

// zod's def and meta are typed per schema kind; these name only what is read here, for any kind.
const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;
const metaOf = (schema: z.ZodType) => ((schema as unknown as { meta: () => FieldMeta | undefined }).meta?.() ?? {}) as FieldMeta;

function humanize(name: string): string {
  const words = name
    .replace(/Id$/, "")
    .replace(/([A-Z])/g, " $1")
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The fields of a workflow's form schema, which is a z.object (a workflow's inputSchema is typed by its input, not its kind). */
function formShape(schema: z.ZodType): Record<string, z.ZodType> {
  if (!(schema instanceof z.ZodObject)) throw new Error("A workflow's inputSchema must be a z.object of its form's fields.");
  return schema.shape;
}

export function describeFields(schema: z.ZodType): FieldDescriptor[] {
  return Object.entries(formShape(schema)).map(([name, field]) => {
    let current = field;
    let meta = metaOf(field);
    let required = true;
    let defaultValue: unknown;
    for (;;) {
      const def = defOf(current);
      if (def.type === "optional") required = false;
      else if (def.type === "default") {
        required = false;
        defaultValue = typeof def.defaultValue === "function" ? (def.defaultValue as () => unknown)() : def.defaultValue;
      } else break;
      current = def.innerType!;
      meta = { ...metaOf(current), ...meta };
    }
    const def = defOf(current);
    const base = {
      name,
      label: meta.label ?? humanize(name),
      help: meta.help,
      placeholder: meta.placeholder,
      required,
      defaultValue,
      optionsFrom: meta.optionsFrom,
    };
    if (meta.kind === "duration") return { ...base, kind: "duration" as const };
    switch (def.type) {
      case "string":
        return { ...base, kind: meta.optionsFrom ? ("select" as const) : meta.kind === "longtext" ? ("longtext" as const) : ("text" as const) };
      case "number":
        return { ...base, kind: "number" as const };
      case "boolean":
        return { ...base, kind: "boolean" as const };
      case "enum":
        return { ...base, kind: "select" as const, options: meta.optionsFrom ? undefined : Object.values(def.entries ?? {}) };
      case "array": {
        const element = defOf(def.element!);
        return { ...base, kind: "multiselect" as const, options: Object.values(element.entries ?? {}) };
      }
      default:
        throw new Error(`Field "${name}" has a type (${def.type}) the form generator does not render.`);
    }
  });
}
