/**
 * Structured logs: one JSON object a line on stdout (info) or stderr (warn, error), with
 * the time, level, the part of Latchkey speaking, a message and fields. Fields whose names
 * suggest a secret are replaced before anything is written, and errors keep their
 * message and stack on the server only.
 */

type Level = "info" | "warn" | "error";
const SECRET = /token|secret|password|authorization|cookie|credential|sealed|private/i;

function redact(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRET.test(k) && typeof v === "string" ? "[redacted]" : redact(v, depth + 1)]));
}

function write(level: Level, component: string, msg: string, fields: Record<string, unknown> = {}) {
  const line = JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...(redact(fields) as Record<string, unknown>) });
  (level === "info" ? process.stdout : process.stderr).write(`${line}\n`);
}

export function logger(component: string) {
  return {
    info: (msg: string, fields?: Record<string, unknown>) => write("info", component, msg, fields),
    warn: (msg: string, fields?: Record<string, unknown>) => write("warn", component, msg, fields),
    error: (msg: string, fields?: Record<string, unknown>) => write("error", component, msg, fields),
  };
}
