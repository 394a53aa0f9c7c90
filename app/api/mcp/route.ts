import { mcpHttp } from "@/lib/mcp/http";

export const dynamic = "force-dynamic";

/** The MCP server for AI agents (Streamable HTTP, stateless), authenticated by an API token; tools need the scopes their REST routes need. */
export const POST = (request: Request) => mcpHttp(request);
/** Stateless: no server-initiated stream and no session to end; the SDK answers 405. */
export const GET = (request: Request) => mcpHttp(request);
export const DELETE = (request: Request) => mcpHttp(request);
