/**
 * Text PostgreSQL cannot store (NUL characters, unpaired UTF-16 surrogates) is refused at
 * the door with a clear message, instead of failing the write later.
 */
export const UNSAFE_TEXT = "Text may not contain NUL characters or broken Unicode (unpaired surrogates).";

export function hasUnsafeText(value: unknown, depth = 0): boolean {
  // String.prototype.isWellFormed (Node.js 20) without asking for the ES2024 library types.
  if (typeof value === "string") return value.includes("\u0000") || !(value as unknown as { isWellFormed(): boolean }).isWellFormed();
  if (depth > 20 || value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some((v) => hasUnsafeText(v, depth + 1));
  return Object.entries(value as Record<string, unknown>).some(([k, v]) => hasUnsafeText(k, depth + 1) || hasUnsafeText(v, depth + 1));
}
