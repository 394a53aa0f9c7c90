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

/**
 * Whether an error means the database could not be reached or dropped the connection
 * (restart, failover, network), as opposed to a bug: callers answer "try again", not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { message?: string; code?: string; cause?: unknown; meta?: unknown } | undefined;
  if (!e) return false;
  if (typeof e.code === "string" && ["P1001", "P1002", "P1008", "P1017", "P2024"].includes(e.code)) return true;
  const text = `${e.message ?? ""} ${String(e.cause ?? "")} ${JSON.stringify(e.meta ?? {})}`;
  return /terminating connection|Connection terminated|connection error and is not queryable|Client was closed|connection (refused|reset|closed)|ECONNREFUSED|ECONNRESET|EPIPE|the database system is (starting up|shutting down|in recovery)|Can't reach database|Timed out fetching a new connection|57P0[1-3]|08006|08001|08003/i.test(text);
}

/** Whether a change was saved is unknown when the connection drops as it commits, so the message says so. */
export const DATABASE_UNAVAILABLE = "The database connection was lost. Nothing is half-saved, but if you were making a change, check whether it went through before trying again.";
