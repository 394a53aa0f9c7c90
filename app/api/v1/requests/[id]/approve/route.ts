import { apiRoute } from "@/lib/api/http";
import { approveBody } from "@/lib/api/schemas";
import { decidedRequestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** Approves a request under the same rules as the portal: never one's own, once per request. */
export const POST = apiRoute({
  name: "requests.approve",
  scope: "approvals:write",
  body: approveBody,
  // The answer is the request as the decision left it, returned by its write rather than read again.
  run: (who, { body, params }) => decidedRequestDetail(who, { requestId: params.id!, decision: "approve", comment: body.comment }),
});
