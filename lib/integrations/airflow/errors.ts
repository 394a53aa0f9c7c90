/**
 * Airflow's error answers, read in both versions' shapes and turned into messages a person
 * can act on: Airflow 2 answers problem details (`{type, title, status, detail}`, where
 * `detail` may be a text or, for refused fields, a marshmallow message dict as text);
 * Airflow 3 answers FastAPI's `{detail: "..."}`, or `{detail: [{loc, msg, type}]}` for a
 * body it refused.
 */
export class AirflowError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** Whether trying again later may succeed (a server error, an overloaded API, a token another API server did not accept). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "AirflowError";
  }
}

/** The reason in an error body, whichever version wrote it; the raw text when it is not JSON. */
export function reasonOf(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text.trim().slice(0, 500) || "no details given";
  }
  if (typeof parsed !== "object" || parsed === null) return String(parsed);
  const { detail, title } = parsed as { detail?: unknown; title?: unknown };
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((issue: { loc?: unknown[]; msg?: string }) => {
        const where = Array.isArray(issue.loc) ? issue.loc.filter((part) => part !== "body").join(".") : "";
        return where ? `${where}: ${issue.msg ?? "invalid"}` : (issue.msg ?? "invalid");
      })
      .join("; ");
  }
  // Airflow 3 answers a database conflict with `{detail: {reason, statement, orig_error}}`.
  if (typeof detail === "object" && detail !== null && typeof (detail as { reason?: unknown }).reason === "string")
    return (detail as { reason: string }).reason;
  if (typeof title === "string" && title) return title;
  return JSON.stringify(parsed).slice(0, 500);
}

export function explain(status: number, reason: string, what: string): string {
  switch (status) {
    case 401:
      return `Airflow refused Latchkey's credentials (401) while trying to ${what}: ${reason}. Check the Airflow user or password.`;
    case 403:
      return `Latchkey's Airflow user may not ${what} (403). Give it the needed permission in Airflow.`;
    case 404:
      return `Airflow does not know it (404) while trying to ${what}: ${reason}`;
    case 409:
      return `Airflow already has it (409) while trying to ${what}: ${reason}`;
    case 400:
    case 415:
    case 422:
      return `Airflow refused the request to ${what} as invalid (${status}): ${reason}`;
    default:
      return `Airflow answered ${status} while trying to ${what}: ${reason}`;
  }
}

export function airflowError(status: number, text: string, what: string, retryable = status >= 500 || status === 429): AirflowError {
  return new AirflowError(explain(status, reasonOf(text), what), status, retryable);
}
