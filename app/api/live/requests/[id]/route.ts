import { requestVersion } from "@/lib/approvals/live";
import { sessionRoute } from "@/lib/api/session-route";

export const dynamic = "force-dynamic";

/** GET /api/live/requests/{id}: the request's status and version, polled by its page to stay live. */
export const GET = sessionRoute<{ id: string }>("live.request", async (who, { id }) => requestVersion(who, id));
