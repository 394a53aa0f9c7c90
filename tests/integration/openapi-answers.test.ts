import { readFile } from "node:fs/promises";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * Real answers of every /api/v1 route, successes and refusals, validated against the OpenAPI
 * document the API serves (generated from the zod schemas): the status is documented for
 * the operation, the media type is the documented one, the body validates (objects are
 * closed: a field the document lacks fails), and the documented headers are present.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
const t: Record<string, string> = {};

interface Answer {
  operation: string;
  status: number;
  contentType: string;
  headers: Headers;
  body: unknown;
}
const answers: Answer[] = [];

beforeAll(async () => {
  fx = await engineFixture();
  const tokens = await import("@/lib/identity/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  t.alice = (
    await tokens.createPersonalToken(alice, { name: "laptop", scopes: ["requests:read", "requests:write", "credentials:read"], expiresInDays: 30 })
  ).secret;
  t.bob = (await tokens.createPersonalToken(bob, { name: "bot", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 30 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

/** Calls an operation by its documented path template and keeps the answer for validation. */
async function call(
  token: string | null,
  method: string,
  template: string,
  options: { id?: string; query?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const path = template.replace("{id}", options.id ?? "");
  const response = await fetch(`${api.url}/api/v1${path}${options.query ? `?${options.query}` : ""}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(options.body !== undefined || options.raw ? { "content-type": "application/json" } : {}),
      ...options.headers,
    },
    body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  const answer = {
    operation: `${method.toLowerCase()} ${template}`,
    status: response.status,
    contentType: (response.headers.get("content-type") ?? "").split(";")[0]!,
    headers: response.headers,
    body: text ? JSON.parse(text) : null,
  };
  answers.push(answer);
  return answer as Answer & { body: any };
}

describe("the OpenAPI document against real answers", () => {
  it("every route's answers, successes and refusals, match the document", async () => {
    // Reads.
    await call(t.alice!, "GET", "/me");
    await call(null, "GET", "/me");
    await call(t.alice!, "GET", "/workflows");
    expect((await call(t.alice!, "GET", "/workflows", { query: "limit=1" })).body.next).toEqual(expect.any(String));
    await call(t.alice!, "GET", "/workflows", { query: "limit=0" });

    // Making requests, and the refusals of creation.
    const one = (
      await call(t.alice!, "POST", "/requests", { body: { workflowId: "temporary-access", input: validInput() }, headers: { "idempotency-key": "openapi-1" } })
    ).body;
    await call(t.alice!, "POST", "/requests", { body: { workflowId: "temporary-access", input: validInput() }, headers: { "idempotency-key": "openapi-1" } });
    await call(t.alice!, "POST", "/requests", {
      body: { workflowId: "temporary-access", input: validInput({ justification: "another body entirely" }) },
      headers: { "idempotency-key": "openapi-1" },
    });
    await call(t.alice!, "POST", "/requests", { body: { workflowId: "temporary-access", input: validInput({ durationMinutes: 10_000 }) } });
    await call(t.alice!, "POST", "/requests", { raw: "{not json" });
    await call(t.alice!, "POST", "/requests", { body: { workflowId: "no-such-workflow", input: {} } });
    await call(t.alice!, "POST", "/requests", { raw: "workflowId=x", headers: { "content-type": "text/plain" } });
    await call(t.alice!, "POST", "/requests", { body: { workflowId: "temporary-access", input: validInput({ justification: "x".repeat(70_000) }) } });
    const two = (
      await call(t.alice!, "POST", "/requests", {
        body: { workflowId: "temporary-access", input: validInput({ justification: "second request for rejection" }) },
      })
    ).body;
    const three = (
      await call(t.alice!, "POST", "/requests", { body: { workflowId: "temporary-access", input: validInput({ justification: "third request to withdraw" }) } })
    ).body;

    await call(t.alice!, "GET", "/requests", { query: "limit=2" });
    await call(t.alice!, "GET", "/requests", { query: "cursor=bogus!" });
    await call(t.alice!, "GET", "/requests/{id}", { id: one.id });
    await call(t.bob!, "GET", "/requests/{id}", { id: one.id });
    await call(t.alice!, "GET", "/requests/{id}", { id: "no-such-request" });

    // Deciding.
    await call(t.bob!, "GET", "/approvals");
    await call(t.alice!, "GET", "/approvals");
    await call(t.alice!, "POST", "/requests/{id}/approve", { id: one.id, body: {} });
    await call(t.bob!, "POST", "/requests/{id}/approve", { id: one.id, body: { comment: "ok" } });
    await call(t.bob!, "POST", "/requests/{id}/approve", { id: one.id, body: { comment: "again" } });
    await call(t.bob!, "POST", "/requests/{id}/approve", { id: one.id, body: { comment: 5 } });
    await call(t.bob!, "POST", "/requests/{id}/reject", { id: two.id, body: { comment: "" } });
    await call(t.bob!, "POST", "/requests/{id}/reject", { id: two.id, body: { comment: "not this week" } });
    await call(t.bob!, "POST", "/requests/{id}/reject", { id: two.id, body: { comment: "again" } });

    // The grant: the credential once, then given back.
    await call(t.alice!, "GET", "/requests/{id}", { id: one.id });
    await call(t.alice!, "POST", "/requests/{id}/credential", { id: one.id });
    await call(t.alice!, "POST", "/requests/{id}/credential", { id: one.id });
    await call(t.bob!, "POST", "/requests/{id}/credential", { id: one.id });
    await call(t.bob!, "POST", "/requests/{id}/revoke", { id: one.id, body: {} });
    await call(t.alice!, "POST", "/requests/{id}/revoke", { id: one.id, body: { reason: "done" } });
    await call(t.alice!, "POST", "/requests/{id}/revoke", { id: one.id, body: { reason: "done" } });
    await call(t.alice!, "POST", "/requests/{id}/cancel", { id: three.id });
    await call(t.alice!, "POST", "/requests/{id}/cancel", { id: three.id });
    await call(t.bob!, "POST", "/requests/{id}/cancel", { id: one.id });
    await call(t.alice!, "GET", "/requests");

    const document = (await (await fetch(`${api.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }> }>>;
    };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema(document, "openapi.json");
    const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");

    const problems: string[] = [];
    for (const a of answers) {
      const [method, path] = a.operation.split(" ") as [string, string];
      const operation = document.paths[path]?.[method];
      const documented = operation?.responses[String(a.status)];
      if (!documented) {
        problems.push(`${a.operation} answered ${a.status}, which the document does not list`);
        continue;
      }
      const mediaTypes = Object.keys(documented.content ?? {});
      if (!mediaTypes.includes(a.contentType)) problems.push(`${a.operation} ${a.status}: ${a.contentType}, documented ${mediaTypes.join(", ")}`);
      const validate = ajv.getSchema(`openapi.json#/${pointer("paths", path, method, "responses", String(a.status), "content", a.contentType, "schema")}`);
      if (!validate) problems.push(`${a.operation} ${a.status}: no schema for ${a.contentType}`);
      else if (!validate(a.body)) problems.push(`${a.operation} ${a.status}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(a.body).slice(0, 300)}`);
      for (const header of Object.keys(documented.headers ?? {})) {
        const conditional = header === "Link" || header === "Idempotent-Replayed" || (a.status === 401 && header.startsWith("RateLimit"));
        if (!conditional && a.headers.get(header) === null) problems.push(`${a.operation} ${a.status}: no ${header} header`);
      }
    }
    expect(problems).toEqual([]);

    // Every documented operation was exercised with a success, so no route escapes the check.
    const succeeded = new Set(answers.filter((a) => a.status < 300).map((a) => a.operation));
    const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
    expect(operations.filter((o) => !succeeded.has(o))).toEqual([]);
    expect(answers.length).toBeGreaterThanOrEqual(40);
  });

  it("fails an answer that grows a field the document lacks (the check is not vacuous)", async () => {
    const document = (await (await fetch(`${api.url}/api/v1/openapi.json`)).json()) as object;
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    ajv.addSchema(document, "openapi.json");
    const validate = ajv.getSchema("openapi.json#/components/schemas/Request")!;
    const real = (await call(t.alice!, "GET", "/requests/{id}", { id: (await call(t.alice!, "GET", "/requests")).body.requests[0].id })).body;
    expect(validate(real)).toBe(true);
    expect(validate({ ...real, secret: "x" })).toBe(false);
    expect(validate({ ...real, status: "teleported" })).toBe(false);
    expect(validate({ ...real, createdAt: "yesterday" })).toBe(false);
  });

  it("the CLI's typed client is generated from this very document (npm run api:types)", async () => {
    const { clientTypes, CLIENT_TYPES_FILE } = await import("../../scripts/api/client-types");
    const current = await clientTypes();
    expect(current).toContain('"/requests/{id}/revoke"');
    expect(await readFile(CLIENT_TYPES_FILE, "utf8")).toBe(current);
  });
});
