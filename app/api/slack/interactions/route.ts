import { handleSlackInteraction } from "@/lib/integrations/slack/interactions";
import { textWithin } from "@/lib/http/bounded-body";
import { MAX_BODY_BYTES, plainText } from "@/lib/http/plain";

export const dynamic = "force-dynamic";

/**
 * Slack's interactivity Request URL: Approve and Reject clicks and the reject modal. Slack
 * signs each request; no session or token applies (lib/integrations/slack/interactions.ts).
 * The body is read up to the routes' limit before its signature can be checked.
 */
export async function POST(request: Request): Promise<Response> {
  const body = await textWithin(request);
  if (body === null) return plainText(413, `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`);
  const answer = await handleSlackInteraction(body, request.headers);
  if (answer.json !== undefined) return Response.json(answer.json, { status: answer.status, headers: { "cache-control": "no-store" } });
  return answer.text ? plainText(answer.status, answer.text) : new Response(null, { status: answer.status });
}
