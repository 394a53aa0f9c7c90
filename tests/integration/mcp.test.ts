import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Latchkey's MCP server driven by the official SDK's own client, over Streamable HTTP
 * (/api/mcp) and over stdio (`latchkey mcp`, the CLI as a separate process), against the
 * real routes and a real database.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let alice: Principal;
let bob: Principal;
const t: Record<string, string> = {};
const clients: Client[] = [];
const EXPECTED_TOOLS = ["cancel_request", "create_request", "get_request", "list_workflows", "reveal_credential", "revoke_grant", "wait_for_decision"];

beforeAll(async () => {
  fx = await engineFixture();
  const tokens = await import("@/lib/identity/tokens");
  const services = await import("@/lib/identity/service-identities");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const dave = await fx.user("dave@example.com", ["platform-admins"]);
  t.alice = (
    await tokens.createPersonalToken(alice, { name: "agent", scopes: ["requests:read", "requests:write", "credentials:read"], expiresInDays: 30 })
  ).secret;
  t.aliceReadOnly = (await tokens.createPersonalToken(alice, { name: "reader", scopes: ["requests:read"], expiresInDays: 30 })).secret;
  t.bob = (
    await tokens.createPersonalToken(bob, {
      name: "approver-bot",
      scopes: ["requests:read", "requests:write", "credentials:read", "approvals:write"],
      expiresInDays: 30,
    })
  ).secret;
  const made = await services.createServiceIdentity(dave, { name: "ci-agent", description: "an agent in CI", groups: ["engineering"], requestOnly: true });
  expect(made.outcome).toBe("done");
  t.ci = (
    await tokens.createServiceToken(dave, made.service!.id, {
      name: "agent",
      scopes: ["requests:read", "requests:write", "credentials:read"],
      expiresInDays: 30,
    })
  ).secret;
  api = await startApiServer();
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await api?.close();
  await fx?.close();
});

async function overHttp(token: string): Promise<Client> {
  const client = new Client({ name: "latchkey-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL("/api/mcp", api.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  clients.push(client);
  return client;
}

function stdioTransport(token: string) {
  return new StdioClientTransport({
    command: process.execPath,
    args: [path.join(process.cwd(), "bin/latchkey.mjs"), "mcp"],
    env: { PATH: process.env.PATH ?? "", LATCHKEY_URL: api.url, LATCHKEY_TOKEN: token, XDG_CONFIG_HOME: mkdtempSync(path.join(os.tmpdir(), "latchkey-mcp-")) },
    stderr: "pipe",
  });
}

async function overStdio(token: string): Promise<Client> {
  const client = new Client({ name: "latchkey-test", version: "1.0.0" });
  await client.connect(stdioTransport(token));
  clients.push(client);
  return client;
}

const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("");

/** A tool call's answer as data; a refusal as { refused: text }, whether the SDK answers it as a tool error or a protocol error. */
async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  options: Parameters<Client["callTool"]>[2] = {},
): Promise<{ data?: Record<string, any>; refused?: string }> {
  try {
    const r = (await client.callTool({ name, arguments: args }, undefined, options)) as CallToolResult;
    return r.isError ? { refused: textOf(r) } : { data: JSON.parse(textOf(r)) };
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

describe("MCP tools", () => {
  it("offers the requester's tools over both transports and no tool to approve, reject or review, whatever the token's scopes", async () => {
    for (const client of [await overHttp(t.bob!), await overStdio(t.bob!), await overHttp(t.ci!)]) {
      const names = (await client.listTools()).tools.map((tool) => tool.name).sort();
      expect(names).toEqual(EXPECTED_TOOLS);
      expect(names.filter((n) => /approv|reject|review|decide/.test(n))).toEqual([]);
    }
  });

  it("requests, waits with progress, takes the credential once and gives access back over Streamable HTTP, audited as the token with channel mcp", async () => {
    const agent = await overHttp(t.alice!);
    const workflows = (await call(agent, "list_workflows")).data!.workflows as { id: string; targets: { id: string }[] }[];
    expect(workflows.find((w) => w.id === "temporary-access")?.targets.map((x) => x.id)).toContain("payments-api-staging");

    const made = (
      await call(agent, "create_request", { workflowId: "temporary-access", input: validInput({ justification: "Agent: investigating INC-77 retries" }) })
    ).data!;
    expect(made).toMatchObject({ status: "pending", requester: "alice@example.com" });

    // Undecided: the wait is bounded, reports progress, and says it did not settle.
    const progress: { progress: number; total?: number; message?: string }[] = [];
    const undecided = (await call(agent, "wait_for_decision", { id: made.id, timeoutSeconds: 2 }, { onprogress: (p) => void progress.push(p) })).data!;
    expect(undecided).toMatchObject({ settled: false, status: "pending" });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toMatchObject({ total: 2, message: "The request is pending." });

    // A person decides, in the portal's engine; the agent's wait ends when the grant is active.
    const waiting = call(agent, "wait_for_decision", { id: made.id, timeoutSeconds: 30 });
    const { decide } = await import("@/lib/approvals/engine");
    await decide(bob, { requestId: made.id, decision: "approve", comment: "ok for the agent" });
    expect((await waiting).data).toMatchObject({ settled: true, status: "active" });

    const credential = (await call(agent, "reveal_credential", { id: made.id })).data!;
    expect(String(credential.credential).split(".")).toHaveLength(3);
    expect((await call(agent, "reveal_credential", { id: made.id })).refused).toMatch(/^conflict: .*already shown once/);
    expect(JSON.stringify(await call(agent, "get_request", { id: made.id }))).not.toContain(credential.credential);

    expect((await call(agent, "revoke_grant", { id: made.id, reason: "task done" })).data).toMatchObject({ status: "revoked" });

    const token = await fx.db.apiToken.findFirstOrThrow({ where: { userId: alice.id, name: "agent" } });
    const events = await fx.db.auditEvent.findMany({ where: { requestId: made.id }, orderBy: { id: "asc" } });
    expect(events.find((e) => e.action === "request.created")).toMatchObject({
      actorType: "personal_token",
      actorEmail: "alice@example.com",
      route: "mcp:create_request",
    });
    expect(events.find((e) => e.action === "grant.revoked")).toMatchObject({ actorType: "personal_token", route: "mcp:revoke_grant" });
    const calls = events.filter((e) => e.action === "mcp.call");
    expect(calls.map((e) => (e.data as { tool: string }).tool)).toEqual([
      "create_request",
      "wait_for_decision",
      "wait_for_decision",
      "reveal_credential",
      "get_request",
      "revoke_grant",
    ]);
    for (const e of calls)
      expect(e).toMatchObject({
        actorType: "personal_token",
        actorEmail: "alice@example.com",
        data: expect.objectContaining({ channel: "mcp", tokenId: token.id }),
      });
    // The refused second reveal is audited too, without the credential anywhere in the trail.
    const refusedReveal = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "mcp.call", data: { path: ["code"], equals: "conflict" } } });
    expect(refusedReveal.data).toMatchObject({ tool: "reveal_credential", outcome: "refused", askedFor: made.id });
    expect(JSON.stringify(await fx.db.auditEvent.findMany({ select: { data: true, note: true } }))).not.toContain(credential.credential);
  });

  it("works the same through `latchkey mcp` on stdio", async () => {
    const agent = await overStdio(t.alice!);
    const made = (await call(agent, "create_request", { workflowId: "temporary-access", input: validInput({ justification: "Agent over stdio: INC-78" }) }))
      .data!;
    expect(made).toMatchObject({ status: "pending", requester: "alice@example.com" });
    expect((await call(agent, "get_request", { id: made.id })).data).toMatchObject({ id: made.id, status: "pending" });
    expect((await call(agent, "cancel_request", { id: made.id })).data).toMatchObject({ status: "cancelled" });
    expect((await call(agent, "wait_for_decision", { id: made.id, timeoutSeconds: 5 })).data).toMatchObject({ settled: true, status: "cancelled" });
    expect(await fx.db.auditEvent.count({ where: { requestId: made.id, action: "request.cancelled", route: "mcp:cancel_request" } })).toBe(1);
  });
});

describe("MCP when its call log cannot be written", () => {
  it("still hands over a credential it has shown once, since the reveal committed with its own audit event", async () => {
    const agent = await overHttp(t.alice!);
    const { decide } = await import("@/lib/approvals/engine");
    const made = (await call(agent, "create_request", { workflowId: "temporary-access", input: validInput({ justification: "Agent: log outage drill" }) }))
      .data!;
    await decide(bob, { requestId: made.id, decision: "approve", comment: "ok" });
    await expect.poll(async () => (await fx.db.accessRequest.findUniqueOrThrow({ where: { id: made.id } })).status, { timeout: 15_000 }).toBe("active");
    // Only the mcp.call event is refused; the engine's own events still commit.
    await fx.db.$executeRawUnsafe(
      `CREATE FUNCTION refuse_mcp_call() RETURNS trigger AS $$ BEGIN IF NEW.action = 'mcp.call' THEN RAISE EXCEPTION 'call log down'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
    );
    await fx.db.$executeRawUnsafe(`CREATE TRIGGER refuse_mcp_call BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION refuse_mcp_call()`);
    try {
      const revealed = await call(agent, "reveal_credential", { id: made.id });
      expect(String(revealed.data?.credential).split(".")).toHaveLength(3);
      expect(await fx.db.auditEvent.count({ where: { requestId: made.id, action: "credential.revealed" } })).toBe(1);
    } finally {
      await fx.db.$executeRawUnsafe(`DROP TRIGGER refuse_mcp_call ON "AuditEvent"`);
      await fx.db.$executeRawUnsafe(`DROP FUNCTION refuse_mcp_call()`);
    }
    expect((await call(agent, "reveal_credential", { id: made.id })).refused).toMatch(/once|already/i);
  });
});

describe("MCP refusals", () => {
  it("refuses a wrong token on both transports before any tool runs", async () => {
    const wrong = "lkp_" + "A".repeat(43);
    await expect(overHttp(wrong)).rejects.toThrow(/401|Unknown API token/);
    const transport = stdioTransport(wrong);
    let stderr = "";
    transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await expect(new Client({ name: "t", version: "1" }).connect(transport)).rejects.toThrow();
    await expect.poll(() => stderr).toMatch(/Unknown API token/);
  });

  it("refuses a JSON-RPC batch, so a hundred tool calls never ride on one unit of the token's rate limit, and records nothing", async () => {
    const before = await fx.db.auditEvent.count({ where: { action: "mcp.call" } });
    const calls = Array.from({ length: 50 }, (_, id) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "list_workflows", arguments: {} } }));
    const answer = await fetch(new URL("/api/mcp", api.url), {
      method: "POST",
      headers: { authorization: `Bearer ${t.alice}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify(calls),
    });
    expect(answer.status).toBe(400);
    expect(answer.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await answer.json()).toMatchObject({ code: "batch_refused", detail: expect.stringMatching(/one JSON-RPC message a request/) });
    // Each refused POST still costs the token one unit of its rate limit.
    expect(answer.headers.get("ratelimit-remaining")).toMatch(/^\d+$/);
    expect(await fx.db.auditEvent.count({ where: { action: "mcp.call" } })).toBe(before);
    const broken = await fetch(new URL("/api/mcp", api.url), {
      method: "POST",
      headers: { authorization: `Bearer ${t.alice}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: "{not json",
    });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ code: "invalid_json" });
  });

  it("refuses a tool whose scope the token lacks, and changes nothing", async () => {
    const reader = await overHttp(t.aliceReadOnly!);
    const before = await fx.db.accessRequest.count();
    const refused = await call(reader, "create_request", { workflowId: "temporary-access", input: validInput() });
    expect(refused.refused).toBe("insufficient_scope: This token lacks the requests:write scope.");
    expect(await fx.db.accessRequest.count()).toBe(before);
    expect((await call(reader, "list_workflows")).data).toBeDefined();
    expect(await fx.db.auditEvent.count({ where: { action: "mcp.call", data: { path: ["code"], equals: "insufficient_scope" } } })).toBe(1);
  });

  it("a request-only identity requests but decides nothing; no token approves its own identity's request; others' grants stay out of reach", async () => {
    const ci = await overHttp(t.ci!);
    const made = (await call(ci, "create_request", { workflowId: "temporary-access", input: validInput({ justification: "CI agent deploy window" }) })).data!;
    expect(made.status).toBe("pending");
    expect(made.requester).not.toBe("alice@example.com");
    for (const name of ["approve_request", "approve", "reject_request", "review"]) {
      expect((await call(ci, name, { id: made.id, comment: "self" })).refused).toMatch(/not found|unknown tool/i);
    }
    // Bob, an approver whose token holds approvals:write, cannot approve his own request through MCP either.
    const bobs = await overHttp(t.bob!);
    const own = (await call(bobs, "create_request", { workflowId: "temporary-access", input: validInput({ justification: "Bob's own agent request" }) })).data!;
    expect((await call(bobs, "approve_request", { id: own.id })).refused).toMatch(/not found|unknown tool/i);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: own.id } })).status).toBe("pending");

    // Alice's active grant: neither the CI identity nor bob (not an admin) may read, reveal or revoke it.
    const agent = await overHttp(t.alice!);
    const hers = (
      await call(agent, "create_request", { workflowId: "temporary-access", input: validInput({ justification: "Alice's grant for the refusal test" }) })
    ).data!;
    const { decide } = await import("@/lib/approvals/engine");
    await decide(bob, { requestId: hers.id, decision: "approve", comment: "ok" });
    expect((await call(ci, "get_request", { id: hers.id })).refused).toMatch(/^not_found:/);
    expect((await call(ci, "reveal_credential", { id: hers.id })).refused).toMatch(/^(not_found|forbidden):/);
    expect((await call(bobs, "revoke_grant", { id: hers.id })).refused).toMatch(/^(forbidden|not_found):/);
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: hers.id } })).status).toBe("active");
    // Refused attempts on alice's request do not land in its timeline.
    expect(await fx.db.auditEvent.count({ where: { requestId: hers.id, action: "mcp.call", actorEmail: { not: "alice@example.com" } } })).toBe(0);
  });

  it("refuses bad arguments with a clear error, not a failure", async () => {
    const agent = await overHttp(t.alice!);
    expect((await call(agent, "wait_for_decision", { id: "x", timeoutSeconds: 10_000 })).refused).toMatch(/timeoutSeconds|300/);
    expect((await call(agent, "get_request", { id: "nope\u0000" })).refused).toMatch(/NUL|not found/);
    expect((await call(agent, "create_request", { workflowId: "temporary-access", input: validInput({ durationMinutes: 10_000 }) })).refused).toMatch(
      /^invalid: .*durationMinutes/,
    );
  });
});
