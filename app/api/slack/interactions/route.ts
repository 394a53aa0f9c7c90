import { handleSlackInteraction } from "@/lib/integrations/slack/interactions";
import { plainText } from "@/lib/http/plain";

export const dynamic = "force-dynamic";

/**
 * Slack's interactivity Request URL: Approve and Reject clicks and the reject modal. Slack
 * signs each request; no session or token applies (lib/integrations/slack/interactions.ts).
 */
export async function POST(request: Request): Promise<Response> {
  const answer = await handleSlackInteraction(await request.text(), request.headers);
  if (answer.json !== undefined) return Response.json(answer.json, { status: answer.status, headers: { "cache-control": "no-store" } });
  return answer.text ? plainText(answer.status, answer.text) : new Response(null, { status: answer.status });
}
