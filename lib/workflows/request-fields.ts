import type { z } from "zod";
import { describeFields } from "./fields";

/**
 * What a requester filled in, as the approver reads it: each field of the workflow's own
 * schema with its label, help and a display value. Derived from the schema, like the form,
 * so a new field of any workflow reaches the request page, the inbox and the API without
 * anyone writing it twice. Pure and client-safe.
 */
export interface RequestField {
  name: string;
  label: string;
  help?: string;
  /** `json` values are pretty-printed; `multiline` keeps line breaks. */
  format: "text" | "json" | "multiline";
  value: string;
}

function formatDuration(minutes: number): string {
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${h} h ${rest} min` : `${h} h`;
}

/** A JSON object or array given as text (a run configuration), pretty-printed; null when it is not one. */
function prettyJson(text: string): string | null {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{") && !trimmed.startsWith("[")) return null;
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return null;
  }
}

function display(value: unknown): Pick<RequestField, "format" | "value"> {
  if (value === undefined || value === null || value === "") return { format: "text", value: "—" };
  if (typeof value === "boolean") return { format: "text", value: value ? "yes" : "no" };
  if (Array.isArray(value)) return { format: "text", value: value.length ? value.map(String).join(", ") : "—" };
  if (typeof value === "object") return { format: "json", value: JSON.stringify(value, null, 2) };
  const text = String(value);
  const json = prettyJson(text);
  if (json !== null) return { format: "json", value: json };
  return { format: text.includes("\n") ? "multiline" : "text", value: text };
}

/**
 * Every field of the schema, in the schema's order, then any stored key the schema no
 * longer knows (an older request), so nothing the requester sent is hidden from the approver.
 */
export function describeRequestInput(schema: z.ZodType, input: Record<string, unknown>, options: { targetTitle?: string } = {}): RequestField[] {
  const fields = describeFields(schema);
  const known = new Set(fields.map((f) => f.name));
  const described = fields.map((f): RequestField => {
    const raw = input[f.name];
    if (f.name === "targetId" && typeof raw === "string") {
      const value = options.targetTitle && options.targetTitle !== raw ? `${options.targetTitle} (${raw})` : raw;
      return { name: f.name, label: f.label, help: f.help, format: "text", value };
    }
    if (f.kind === "duration" && typeof raw === "number")
      return { name: f.name, label: f.label.replace(/ \(minutes\)$/, ""), help: f.help, format: "text", value: formatDuration(raw) };
    return { name: f.name, label: f.label, help: f.help, ...display(raw) };
  });
  const extra = Object.keys(input)
    .filter((k) => !known.has(k))
    .sort()
    .map((k): RequestField => ({ name: k, label: k, ...display(input[k]) }));
  return [...described, ...extra];
}

/** The fields whose shown value differs between a grant and the request that extends it. */
export function changedFields(before: RequestField[], after: RequestField[]): { label: string; from: string; to: string }[] {
  const old = new Map(before.map((f) => [f.name, f]));
  return after
    .filter((f) => f.name !== "justification" && old.get(f.name)?.value !== f.value)
    .map((f) => ({ label: f.label, from: old.get(f.name)?.value ?? "—", to: f.value }));
}
