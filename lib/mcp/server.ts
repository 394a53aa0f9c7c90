import "server-only";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { CallToolResult, ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { withAuditContext, type AuditContext } from "../audit/context";
import { actorOf, recordEvent } from "../audit/record";
import { db } from "../db";
import { DATABASE_UNAVAILABLE, DomainError, isDatabaseUnavailable } from "../errors";
import { logger } from "../log";
import type { Principal } from "../policy/evaluate";
import { hasUnsafeText, UNSAFE_TEXT } from "../text";
import { TOOLS, type ToolContext, type ToolName } from "./tools";

/**
 * The Model Context Protocol server of one authenticated caller, built with the official
 * SDK. The transport (stdio through `latchkey mcp`, or Streamable HTTP at /api/mcp) has
 * already authenticated the API token; here each tool call checks the token's scope, runs
 * the engine under the audit context `mcp:<tool>`, and leaves one `mcp.call` audit event
 * naming the tool and its outcome, as the token's identity.
 */

export const MCP_SERVER_INFO = { name: "latchkey", version: "1.0.0" };

type Outcome = { ok: true; data: unknown } | { ok: false; code: string; message: string };

export function mcpServerFor(who: Principal, context: AuditContext, options: { pollMs?: number } = {}): McpServer {
  const server = new McpServer(MCP_SERVER_INFO, {
    instructions:
      "Latchkey grants short-lived access after people approve it. Find what you may request with list_workflows, ask with create_request (say why in justification), wait with wait_for_decision, then take the credential once with reveal_credential and give access back with revoke_grant when done. You cannot approve anything: people decide.",
  });
  for (const [name, tool] of Object.entries(TOOLS) as [ToolName, (typeof TOOLS)[ToolName]][]) {
    server.registerTool(
      name,
      {
        title: tool.title,
        description: `${tool.description} Needs the ${tool.scope} scope.`,
        inputSchema: tool.input,
        annotations: { readOnlyHint: tool.readOnly, openWorldHint: false },
      },
      async (args: Record<string, unknown>, extra: RequestHandlerExtra<ServerRequest, ServerNotification>) => {
        const progressToken = extra._meta?.progressToken;
        const toolContext: ToolContext = {
          signal: extra.signal,
          pollMs: options.pollMs ?? 1_000,
          progress: async (progress, total, message) => {
            if (progressToken !== undefined)
              await extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress, total, message } });
          },
        };
        const outcome = await withAuditContext({ ...context, route: `mcp:${name}` }, () => call(who, name, args, toolContext));
        return resultOf(outcome);
      },
    );
  }
  return server;
}

async function call(who: Principal, name: ToolName, args: Record<string, unknown>, context: ToolContext): Promise<Outcome> {
  const tool = TOOLS[name];
  let outcome: Outcome;
  if (!who.via?.scopes.includes(tool.scope)) outcome = { ok: false, code: "insufficient_scope", message: `This token lacks the ${tool.scope} scope.` };
  else if (hasUnsafeText(args)) outcome = { ok: false, code: "invalid_text", message: UNSAFE_TEXT };
  else {
    try {
      outcome = { ok: true, data: await (tool.run as (who: Principal, args: unknown, context: ToolContext) => Promise<unknown>)(who, args, context) };
    } catch (error) {
      if (error instanceof DomainError)
        outcome = {
          ok: false,
          code: error.code,
          message: error.fieldErrors
            ? `${error.message} ${Object.entries(error.fieldErrors)
                .map(([k, v]) => `${k}: ${v}`)
                .join("; ")}`
            : error.message,
        };
      else if (isDatabaseUnavailable(error)) return { ok: false, code: "unavailable", message: DATABASE_UNAVAILABLE };
      else {
        logger("mcp").error("unexpected failure", { tool: name, error });
        outcome = {
          ok: false,
          code: "internal",
          message: "Something went wrong on our side. Nothing was changed; try again, and tell the platform team if it keeps happening.",
        };
      }
    }
  }
  try {
    await audit(who, name, args, outcome);
  } catch (error) {
    logger("mcp").error("could not audit a call", { tool: name, error });
    // The change itself committed with its own audit event (route mcp:<tool>): the caller gets what it asked for, a
    // credential shown once included, rather than an error that would lose it or invite a duplicate.
    if (outcome.ok) return outcome;
    if (isDatabaseUnavailable(error)) return { ok: false, code: "unavailable", message: DATABASE_UNAVAILABLE };
    return { ok: false, code: "internal", message: "Something went wrong on our side; tell the platform team if it keeps happening." };
  }
  return outcome;
}

/** One event per call, as the token's identity, with the channel; never the credential or other answers. */
async function audit(who: Principal, name: ToolName, args: Record<string, unknown>, outcome: Outcome): Promise<void> {
  // An id PostgreSQL cannot store (it was refused for that) is not repeated into the trail.
  const asked = typeof args.id === "string" && !hasUnsafeText(args.id) ? args.id : undefined;
  const made = outcome.ok && name === "create_request" ? (outcome.data as { id: string }).id : undefined;
  // Tied to the request only when the caller could act on it, so an attempt on another person's request does not land in its timeline.
  const requestId = outcome.ok ? (made ?? asked) : undefined;
  await db.$transaction((tx) =>
    recordEvent(tx, {
      actor: actorOf(who),
      action: "mcp.call",
      requestId,
      data: {
        channel: "mcp",
        tool: name,
        outcome: outcome.ok ? "ok" : "refused",
        ...(outcome.ok ? {} : { code: outcome.code }),
        ...(!outcome.ok && asked ? { askedFor: asked.slice(0, 64) } : {}),
      },
    }),
  );
}

function resultOf(outcome: Outcome): CallToolResult {
  if (!outcome.ok) return { isError: true, content: [{ type: "text", text: `${outcome.code}: ${outcome.message}` }] };
  return {
    content: [{ type: "text", text: JSON.stringify(outcome.data, null, 2) }],
    structuredContent: JSON.parse(JSON.stringify(outcome.data)) as Record<string, unknown>,
  };
}
