import { inboxFor } from "@/lib/approvals/queries";
import { apiRoute } from "@/lib/api/http";
import { requestSummary } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** Pending requests this identity could approve now. */
export const GET = apiRoute({
  name: "approvals.inbox",
  scope: "approvals:write",
  run: async (who) => ({ requests: who.requestOnly ? [] : (await inboxFor(who)).map(requestSummary) }),
});
