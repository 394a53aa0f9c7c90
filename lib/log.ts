/**
 * Structured logs through pino: one JSON object a line on stdout (debug, info) or stderr
 * (warn, error, fatal), with `time` (ISO 8601), `level` (its name), `component` (the part of
 * Latchkey speaking), `msg` and fields. LATCHKEY_LOG_LEVEL (debug, info, warn, error; default
 * info) sets what is written. Within an HTTP request, `httpRequestId` (the X-Request-Id the
 * portal answers with) is added to every line.
 *
 * Redaction stays hand-written (pino's `redact` takes fixed paths): any field whose name
 * suggests a secret is replaced at any depth, whatever path it sits on. Errors keep their
 * message, stack and causes (pino's errWithCause serializer), on the server only.
 */
import pino from "pino";
import { currentHttpRequestId } from "./observability/request-context";

const SECRET = /token|secret|password|authorization|cookie|credential|sealed|private/i;
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

function redact(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return redact(pino.stdSerializers.errWithCause(value), depth);
  if (depth > 5 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRET.test(k) && typeof v === "string" ? "[redacted]" : redact(v, depth + 1)]),
  );
}

/** Read here rather than through lib/env.ts: lines are written before (and about) the configuration being validated. */
function level(): pino.Level {
  const wanted = process.env.LATCHKEY_LOG_LEVEL;
  return (LOG_LEVELS as readonly string[]).includes(wanted ?? "") ? (wanted as pino.Level) : "info";
}

let root: pino.Logger | undefined;
function base(): pino.Logger {
  // process.stdout/stderr rather than file descriptors: writes stay in order with everything else the process prints.
  root ??= pino(
    {
      level: level(),
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => {
          const id = currentHttpRequestId();
          return redact(id && fields.httpRequestId === undefined ? { httpRequestId: id, ...fields } : fields) as Record<string, unknown>;
        },
      },
    },
    pino.multistream(
      [
        { level: "debug", stream: process.stdout },
        { level: "warn", stream: process.stderr },
      ],
      { dedupe: true },
    ),
  );
  return root;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function logger(component: string): Logger {
  let child: pino.Logger | undefined;
  const get = () => (child ??= base().child({ component }));
  return {
    debug: (msg, fields) => get().debug(fields ?? {}, msg),
    info: (msg, fields) => get().info(fields ?? {}, msg),
    warn: (msg, fields) => get().warn(fields ?? {}, msg),
    error: (msg, fields) => get().error(fields ?? {}, msg),
  };
}
