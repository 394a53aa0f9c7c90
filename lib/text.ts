import { z } from "zod";

/**
 * Text PostgreSQL cannot store (NUL characters, unpaired UTF-16 surrogates) is refused at
 * the door with a clear message, instead of failing the write later.
 */
export const UNSAFE_TEXT = "Text may not contain NUL characters or broken Unicode (unpaired surrogates).";

/** Whether PostgreSQL can store and compare this string (no NUL, no unpaired surrogate). */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}

export function hasUnsafeText(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return !isStorableText(value);
  if (depth > 20 || value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some((v) => hasUnsafeText(v, depth + 1));
  return Object.entries(value as Record<string, unknown>).some(([k, v]) => hasUnsafeText(k, depth + 1) || hasUnsafeText(v, depth + 1));
}

/** A zod string PostgreSQL can store: for query and path parameters that reach a query. */
export const storableString = () => z.string().refine(isStorableText, { message: UNSAFE_TEXT });

/** An own key of a record: ids from outside never reach Object.prototype (`__proto__`, `constructor`, `toString`). */
export function ownEntry<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}
