import { toResponse, type PlainAnswer } from "./plain";

/**
 * The one error format of Latchkey's machine-facing answers (RFC 9457 problem details, with
 * Latchkey's `code` as an extension member), shared by the API wrapper, MCP and the lean
 * authorization listener, so each can refuse in the same words without importing the others.
 */

/** Short, stable titles by code (RFC 9457 `title`); `detail` says what happened this time. */
const TITLES: Record<string, string> = {
  invalid: "Invalid input",
  invalid_json: "Body is not JSON",
  invalid_text: "Text PostgreSQL cannot store",
  invalid_request: "Invalid request",
  unauthenticated: "Not authenticated",
  forbidden: "Not allowed",
  insufficient_scope: "Token lacks the scope",
  not_found: "Not found",
  conflict: "Conflict",
  idempotency_key_reused: "Idempotency-Key reused with another body",
  idempotency_key_in_use: "Idempotency-Key in use",
  unsupported_media_type: "Unsupported media type",
  too_large: "Body too large",
  batch_refused: "JSON-RPC batch refused",
  rate_limited: "Too many requests",
  unavailable: "Service unavailable",
  internal: "Internal error",
};

/** The problem type URI of a code: stable, so clients may switch on it as on `code`. */
export const problemType = (code: string) => `urn:latchkey:problem:${code}`;

/** The one error format of the API (RFC 9457), as plain data (the lean listener writes it as is). */
export function problemAnswer(
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): PlainAnswer {
  const body = { type: problemType(code), title: TITLES[code] ?? code, status, detail: message, code, ...extra };
  return { status, headers: { "content-type": "application/problem+json", "cache-control": "no-store", ...headers }, body: JSON.stringify(body) };
}

export function problem(status: number, code: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return toResponse(problemAnswer(status, code, message, extra, headers));
}
