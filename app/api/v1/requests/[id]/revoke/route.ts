import { revokeGrant } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";
import { revokeBody } from "@/lib/api/schemas";
import { requestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** Ends an active grant early: its requester, or an admin, under the engine's rules (so scripts can give access back when done). */
export const POST = apiRoute({
  name: "requests.revoke",
  scope: "requests:write",
  body: revokeBody,
  run: async (who, { params, body }) => {
    await revokeGrant(who, { requestId: params.id!, reason: body.reason ?? "" });
    return requestDetail(who, params.id!);
  },
});
