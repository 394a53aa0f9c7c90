import { apiRoute } from "@/lib/api/http";
import { requestDetail } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** A request's status, stages, decisions and credential metadata. */
export const GET = apiRoute({ name: "requests.get", scope: "requests:read", run: (who, { params }) => requestDetail(who, params.id!) });
