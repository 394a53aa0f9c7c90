import { cancelRequest } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";
import { requestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** The requester withdraws a request nobody has decided yet. */
export const POST = apiRoute({
  name: "requests.cancel",
  scope: "requests:write",
  run: async (who, { params }) => {
    await cancelRequest(who, params.id!);
    return requestDetail(who, params.id!);
  },
});
