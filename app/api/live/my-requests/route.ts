import { myRequestsVersion } from "@/lib/approvals/live";
import { sessionRoute } from "@/lib/api/session-route";

export const dynamic = "force-dynamic";

/** GET /api/live/my-requests: the version of the signed-in person's requests, polled by My requests. */
export const GET = sessionRoute("live.my_requests", async (who) => myRequestsVersion(who));
