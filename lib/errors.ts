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
