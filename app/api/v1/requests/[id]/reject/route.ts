import { apiRoute } from "@/lib/api/http";
import { rejectBody } from "@/lib/api/schemas";
import { decidedRequestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** Rejects a request, with the reason (required); a rejection ends it at once. */
export const POST = apiRoute({
  name: "requests.reject",
  scope: "approvals:write",
  body: rejectBody,
  // The answer is the request as the decision left it, returned by its write rather than read again.
  run: (who, { body, params }) => decidedRequestDetail(who, { requestId: params.id!, decision: "reject", comment: body.comment }),
});
