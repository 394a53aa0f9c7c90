import { apiRoute } from "@/lib/api/http";
import { inboxPage } from "@/lib/api/requests";

export const dynamic = "force-dynamic";

/** Pending requests this identity could approve now, oldest first, a page at a time (`limit`, `cursor`). */
export const GET = apiRoute({ name: "approvals.inbox", scope: "approvals:write", run: (who, { request }) => inboxPage(who, request) });
