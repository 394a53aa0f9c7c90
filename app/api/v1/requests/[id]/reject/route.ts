import { decide } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";
import { rejectBody } from "@/lib/api/schemas";
import { requestDetail } from "@/lib/api/views";
import type { WriteView } from "@/lib/approvals/rows";

export const dynamic = "force-dynamic";

/** Rejects a request, with the reason (required); a rejection ends it at once. */
export const POST = apiRoute({
  name: "requests.reject",
  scope: "approvals:write",
  body: rejectBody,
  run: async (who, { body, params }) => {
    // The answer is the request as the rejection left it, returned by its write rather than read again (WriteView).
    const view: WriteView = { viewerId: who.id };
    await decide(who, { requestId: params.id!, decision: "reject", comment: body.comment }, undefined, view);
    return requestDetail(who, params.id!, view);
  },
});
