import { decide } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";
import { rejectBody } from "@/lib/api/schemas";
import { requestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** Rejects a request, with the reason (required); a rejection ends it at once. */
export const POST = apiRoute({
  name: "requests.reject",
  scope: "approvals:write",
  body: rejectBody,
  run: async (who, { body, params }) => {
    await decide(who, { requestId: params.id!, decision: "reject", comment: body.comment });
    return requestDetail(who, params.id!);
  },
});
