/**
 * Clients for the ticket checks: Jira Cloud's REST API v3 (`GET /rest/api/3/issue/{key}`,
 * basic auth with an account e-mail and API token) and a generic HTTP check. Both answer
 * the same question (does the ticket exist, is it open) or throw TicketCheckError when
 * the system cannot answer, so the caller can refuse rather than guess. A 429 is retried
 * once when its Retry-After is short; a longer wait is an error, not a hung request.
 */

export interface TicketState {
  key: string;
  open: boolean;
  status: string;
  summary?: string;
}

export class TicketCheckError extends Error {}

/** Longest Retry-After a request is held for while a person waits on the form. */
const MAX_RETRY_WAIT_MS = 3_000;

async function getWithRetry(url: string, headers: Record<string, string>, system: string): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
    } catch (error) {
      throw new TicketCheckError(`${system} could not be reached (${(error as Error).message})`);
    }
    if (response.status !== 429) return response;
    const wait = Number(response.headers.get("retry-after") ?? "NaN") * 1000;
    if (attempt > 0 || !Number.isFinite(wait) || wait > MAX_RETRY_WAIT_MS) {
      throw new TicketCheckError(
        `${system} is rate-limiting Latchkey (HTTP 429${response.headers.get("retry-after") ? `, retry after ${response.headers.get("retry-after")} s` : ""})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 0)));
  }
}

async function errorText(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { errorMessages?: unknown; message?: unknown };
    if (Array.isArray(body.errorMessages) && body.errorMessages.length) return body.errorMessages.map(String).join("; ");
    if (typeof body.message === "string") return body.message;
  } catch {
    /* not JSON: the status says enough */
  }
  return "";
}

export interface JiraConnection {
  baseUrl: string;
  user: string;
  token: string;
}

/** A Jira issue, or null when Jira says it does not exist (or this account may not see it: Jira does not tell the two apart). */
export async function jiraIssue(jira: JiraConnection, key: string): Promise<TicketState | null> {
  const url = `${jira.baseUrl.replace(/\/+$/, "")}/rest/api/3/issue/${encodeURIComponent(key)}?fields=status,summary`;
  const headers = {
    accept: "application/json",
    authorization: `Basic ${Buffer.from(`${jira.user}:${jira.token}`).toString("base64")}`,
    "user-agent": "Latchkey",
  };
  const response = await getWithRetry(url, headers, "Jira");
  if (response.status === 404) return null;
  if (!response.ok) {
    const why = await errorText(response);
    throw new TicketCheckError(`Jira answered HTTP ${response.status}${why ? `: ${why}` : ""}`);
  }
  const body = (await response.json().catch(() => null)) as {
    key?: unknown;
    fields?: { summary?: unknown; status?: { name?: unknown; statusCategory?: { key?: unknown } } };
  } | null;
  const status = body?.fields?.status;
  if (typeof body?.key !== "string" || typeof status?.name !== "string" || typeof status.statusCategory?.key !== "string") {
    throw new TicketCheckError("Jira's answer has no issue status");
  }
  // Jira's status categories are new, indeterminate and done; only done is closed, whatever a project names its statuses.
  return {
    key: body.key,
    open: status.statusCategory.key !== "done",
    status: status.name,
    summary: typeof body.fields?.summary === "string" ? body.fields.summary : undefined,
  };
}

/** A generic check: `url` with {key} filled in answers 404 (no such ticket) or 200 with `{"open": boolean, "status"?: string}`. */
export async function httpTicket(urlTemplate: string, token: string | undefined, key: string): Promise<TicketState | null> {
  const url = urlTemplate.replaceAll("{key}", encodeURIComponent(key));
  const headers: Record<string, string> = { accept: "application/json", "user-agent": "Latchkey" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await getWithRetry(url, headers, "The ticket check");
  if (response.status === 404) return null;
  if (!response.ok) {
    const why = await errorText(response);
    throw new TicketCheckError(`The ticket check answered HTTP ${response.status}${why ? `: ${why}` : ""}`);
  }
  const body = (await response.json().catch(() => null)) as { open?: unknown; status?: unknown } | null;
  if (typeof body?.open !== "boolean") throw new TicketCheckError('The ticket check\'s answer has no boolean "open"');
  return { key, open: body.open, status: typeof body.status === "string" ? body.status : body.open ? "open" : "closed" };
}
