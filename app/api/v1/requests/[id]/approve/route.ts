import { decide } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";
import { approveBody } from "@/lib/api/schemas";
import { requestDetail } from "@/lib/api/views";
import type { WriteView } from "@/lib/approvals/rows";

export const dynamic = "force-dynamic";

/** Approves a request under the same rules as the portal: never one's own, once per request. */
export const POST = apiRoute({
  name: "requests.approve",
  scope: "approvals:write",
  body: approveBody,
  run: async (who, { body, params }) => {
    // The answer is the request as the approval left it, returned by its last write rather than read again (WriteView).
    const view: WriteView = { viewerId: who.id };
    await decide(who, { requestId: params.id!, decision: "approve", comment: body.comment }, undefined, view);
    return requestDetail(who, params.id!, view);
  },
});
