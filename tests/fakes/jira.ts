import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A fake of the one Jira Cloud REST API v3 endpoint Latchkey calls,
 * `GET /rest/api/3/issue/{issueIdOrKey}`, as Atlassian documents it:
 *
 * - Basic auth with an account e-mail and API token; anything else is 401 with Jira's
 *   `{"errorMessages": [...], "errors": {}}` body.
 * - An unknown key (or one the account may not see: Jira does not tell the two apart) is
 *   404 `{"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}`.
 * - The issue's `fields` are limited by the `fields` query parameter; `status` carries
 *   `statusCategory` with its key `new`, `indeterminate` or `done`.
 * - Rate limiting as Jira Cloud does it: 429 with `Retry-After` (seconds) and a JSON body.
 *
 * Every request is recorded, so a test can see what the client sent.
 */
export type StatusCategory = "new" | "indeterminate" | "done";

export interface FakeIssue {
  summary: string;
  status: string;
  category: StatusCategory;
}

const CATEGORY = {
  new: { id: 2, key: "new", colorName: "blue-gray", name: "To Do" },
  indeterminate: { id: 4, key: "indeterminate", colorName: "yellow", name: "In Progress" },
  done: { id: 3, key: "done", colorName: "green", name: "Done" },
} as const;

export function jiraFake(credentials: { email: string; token: string }) {
  const issues = new Map<string, FakeIssue & { id: string }>();
  const requests: { method: string; path: string; authorization?: string }[] = [];
  let throttle: { count: number; retryAfter: number } = { count: 0, retryAfter: 0 };
  let base = "";

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json;charset=UTF-8", ...headers }).end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", base);
    requests.push({ method: req.method ?? "", path: `${url.pathname}${url.search}`, authorization: req.headers.authorization });
    const expected = `Basic ${Buffer.from(`${credentials.email}:${credentials.token}`).toString("base64")}`;
    if (req.headers.authorization !== expected) {
      send(
        res,
        401,
        { errorMessages: ["You are not authenticated. Authentication required to perform this operation."], errors: {} },
        { "www-authenticate": 'Basic realm="protected-area"' },
      );
      return;
    }
    if (throttle.count > 0) {
      throttle.count -= 1;
      send(
        res,
        429,
        { errorMessages: ["Rate limit exceeded."], errors: {} },
        { "retry-after": String(throttle.retryAfter), "x-ratelimit-reason": "jira-quota-based" },
      );
      return;
    }
    const match = /^\/rest\/api\/3\/issue\/([^/]+)$/.exec(url.pathname);
    if (req.method !== "GET" || !match) {
      send(res, 404, { errorMessages: ["null for uri: " + url.href], errors: {} });
      return;
    }
    const key = decodeURIComponent(match[1]!).toUpperCase();
    const issue = issues.get(key);
    if (!issue) {
      send(res, 404, { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} });
      return;
    }
    const all = {
      summary: issue.summary,
      status: {
        self: `${base}/rest/api/3/status/${issue.id}`,
        description: "",
        iconUrl: `${base}/images/icons/statuses/generic.png`,
        name: issue.status,
        id: issue.id,
        statusCategory: { self: `${base}/rest/api/3/statuscategory/${CATEGORY[issue.category].id}`, ...CATEGORY[issue.category] },
      },
      issuetype: { name: "Task" },
      project: { key: key.split("-")[0] },
    };
    const wanted = url.searchParams.get("fields");
    const fields = wanted ? Object.fromEntries(Object.entries(all).filter(([name]) => wanted.split(",").includes(name))) : all;
    send(res, 200, {
      expand: "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
      id: issue.id,
      self: `${base}/rest/api/3/issue/${issue.id}`,
      key,
      fields,
    });
  });

  return {
    requests,
    /** Creates or changes an issue. */
    issue(key: string, issue: FakeIssue) {
      issues.set(key.toUpperCase(), { ...issue, id: String(10_000 + issues.size) });
    },
    /** The next `count` authenticated calls are answered 429 with this Retry-After. */
    rateLimit(count: number, retryAfter: number) {
      throttle = { count, retryAfter };
    },
    async start(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return base;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
