import "server-only";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { contextOf } from "../audit/context";
import { authenticate } from "../authz/caller";
import { MAX_BODY_BYTES } from "../http/plain";
import { problem } from "../http/problem";
import { DATABASE_UNAVAILABLE, isDatabaseUnavailable } from "../errors";
import { logger } from "../log";
import { hasUnsafeText, UNSAFE_TEXT } from "../text";
import type { Principal } from "../policy/evaluate";
import { mcpServerFor } from "./server";

/**
 * MCP's Streamable HTTP transport at /api/mcp, stateless: every POST carries its API token
 * and gets a server of its own, so any instance behind a load balancer can answer it and no
 * session outlives the token's checks (a revoked token stops at the next call). Progress of
 * a long call streams back as server-sent events in the answer to that POST.
 */
export async function mcpHttp(request: Request): Promise<Response> {
  try {
    if (hasUnsafeText([...new URL(request.url).searchParams].flat())) return problem(400, "invalid_text", UNSAFE_TEXT);
    const auth = await authenticate(request);
    if ("refusal" in auth) return auth.refusal;
    const response = await answer(request, auth.who);
    for (const [name, value] of Object.entries(auth.rate)) response.headers.set(name, value);
    return response;
  } catch (error) {
    if (isDatabaseUnavailable(error)) return problem(503, "unavailable", DATABASE_UNAVAILABLE, {}, { "retry-after": "2" });
    logger("mcp").error("unexpected failure", { error });
    return problem(500, "internal", "Something went wrong on our side. Nothing was changed; try again, and tell the platform team if it keeps happening.");
  }
}

async function answer(request: Request, who: Principal): Promise<Response> {
  // One JSON-RPC message a POST: a batch would run up to a hundred tool calls (each audited) for one unit of the token's rate limit.
  let parsedBody: unknown;
  if (request.method === "POST") {
    if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES)
      return problem(413, "too_large", `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`);
    const text = await request.text();
    if (Buffer.byteLength(text) > MAX_BODY_BYTES) return problem(413, "too_large", `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`);
    try {
      parsedBody = JSON.parse(text);
    } catch {
      return problem(400, "invalid_json", "The body is not JSON: send one JSON-RPC message.");
    }
    if (Array.isArray(parsedBody))
      return problem(
        400,
        "batch_refused",
        "Send one JSON-RPC message a request; batches are refused, so every tool call counts against the token's rate limit.",
      );
  }
  const server = mcpServerFor(who, contextOf(request.headers, "mcp"));
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, maxRequestBodySize: MAX_BODY_BYTES });
  await server.connect(transport);
  return transport.handleRequest(request, parsedBody === undefined ? undefined : { parsedBody });
}
