import { answerForwardAuth } from "@/lib/authz/forward-auth";
import { toResponse } from "@/lib/http/plain";

export const dynamic = "force-dynamic";

/** Forward-auth for configured proxies (lib/authz/forward-auth.ts). */
async function handle(request: Request): Promise<Response> {
  return toResponse(await answerForwardAuth(request));
}

export const GET = handle;
export const HEAD = handle;
export const POST = handle;
