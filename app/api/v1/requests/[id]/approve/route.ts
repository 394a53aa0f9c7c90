import { decide } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";
import { approveBody } from "@/lib/api/schemas";
import { requestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** Approves a request under the same rules as the portal: never one's own, once per request. */
export const POST = apiRoute({
  name: "requests.approve",
  scope: "approvals:write",
  body: approveBody,
  run: async (who, { body, params }) => {
    await decide(who, { requestId: params.id!, decision: "approve", comment: body.comment });
    return requestDetail(who, params.id!);
  },
});
