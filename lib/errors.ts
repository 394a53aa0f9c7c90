/**
 * Expected failures, each with a message a person can act on. Actions and routes map
 * these to results; anything else is logged and shown as a generic error.
 */
export class DomainError extends Error {
  constructor(
    message: string,
    readonly code: "not_found" | "forbidden" | "conflict" | "invalid" | "unauthenticated",
    readonly fieldErrors?: Record<string, string>,
  ) {
    super(message);
    this.name = "DomainError";
  }
}

export const notFound = (what: string) => new DomainError(`${what} was not found.`, "not_found");
export const forbidden = (message: string) => new DomainError(message, "forbidden");
export const conflict = (message: string) => new DomainError(message, "conflict");
export const invalid = (message: string, fieldErrors?: Record<string, string>) => new DomainError(message, "invalid", fieldErrors);

export type Result<T> = { ok: true; data: T } | { ok: false; error: string; code: DomainError["code"] | "internal"; fieldErrors?: Record<string, string> };

/** Whether a change was saved is unknown when the connection drops as it commits, so the message says so. */
export const DATABASE_UNAVAILABLE =
  "The database connection was lost. Nothing is half-saved, but if you were making a change, check whether it went through before trying again.";
export const DATABASE_READ_ONLY =
  "The database is refusing changes right now (it is read-only, for maintenance or a failover). Nothing was saved; try again in a few minutes.";
export const DATABASE_BUSY =
  "The database is too busy to take this right now (no free connection, or it timed out or clashed with another change). Nothing was saved; try again in a moment.";

export type DatabaseRefusal = "unreachable" | "read-only" | "busy";

/**
 * Why the database refused, when it did so as a whole rather than for this input: it could not
 * be reached or dropped the connection (restart, failover, network), it is read-only (SQLSTATE
 * 25006, a standby or default_transaction_read_only), or it is out of connections (53300),
 * timed out (57014) or lost a serialization race (40001, 40P01, 55P03). Callers answer 503 and
 * "try again", never 500. The SQLSTATE arrives as a code inside the driver adapter's error, so
 * both the code and the server's words are matched.
 */
export function databaseRefusal(error: unknown): DatabaseRefusal | null {
  const e = error as { message?: string; code?: string; cause?: unknown; meta?: unknown } | undefined;
  if (!e || typeof e !== "object") return null;
  const text = `${e.message ?? ""} ${String(e.cause ?? "")} ${safeJson(e.cause)} ${safeJson(e.meta)}`;
  const sqlstate = (code: string) => e.code === code || new RegExp(`"(original)?code"\\s*:\\s*"${code}"`, "i").test(text);
  if (sqlstate("25006") || /read-only transaction/i.test(text)) return "read-only";
  if (typeof e.code === "string" && ["P2024", "P2034"].includes(e.code)) return "busy";
  // A transaction that ran past its time limit was rolled back (P2028, Prisma's and lib/db.ts's alike): nothing was saved, and a later try can pass.
  if (e.code === "P2028" && /time limit|expired transaction|timeout for this transaction/i.test(text)) return "busy";
  if (
    ["53300", "53400", "57014", "40001", "40P01", "55P03"].some(sqlstate) ||
    /too many clients|remaining connection slots are reserved|too many connections for (role|database)|canceling statement due to statement timeout|could not serialize access|deadlock detected/i.test(
      text,
    )
  )
    return "busy";
  if (typeof e.code === "string" && ["P1001", "P1002", "P1008", "P1017"].includes(e.code)) return "unreachable";
  if (
    /terminating connection|Connection terminated|connection error and is not queryable|Client was closed|connection (refused|reset|closed)|ECONNREFUSED|ECONNRESET|EPIPE|the database system is (starting up|shutting down|in recovery)|Can't reach database|Timed out fetching a new connection|57P0[1-3]|08006|08001|08003/i.test(
      text,
    )
  )
    return "unreachable";
  return null;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value ?? {}, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "";
  } catch {
    return "";
  }
}

/** Whether the database refused as a whole (see databaseRefusal): callers answer 503, not 500. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return databaseRefusal(error) !== null;
}

/** The message for a refusal of the database as a whole. */
export function databaseUnavailableMessage(error: unknown): string {
  const reason = databaseRefusal(error);
  return reason === "read-only" ? DATABASE_READ_ONLY : reason === "busy" ? DATABASE_BUSY : DATABASE_UNAVAILABLE;
}

/** What fieldErrorsOf reads of a zod issue. */
export interface IssueLike {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/**
 * The one converter from zod issues to field errors, for servers and forms alike: the first
 * message for each top-level field, and an issue about the whole input under `root` ("form"
 * unless said). `nested` keys by the whole path ("a.b.0") for JSON bodies whose fields nest.
 */
export function fieldErrorsOf(
  issues: readonly IssueLike[],
  { root = "form", nested = false }: { root?: string; nested?: boolean } = {},
): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const issue of issues) {
    const key = issue.path.length === 0 ? root : nested ? issue.path.map(String).join(".") : String(issue.path[0]);
    errors[key] ??= issue.message;
  }
  return errors;
}
