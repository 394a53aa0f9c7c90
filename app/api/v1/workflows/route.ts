import { apiRoute } from "@/lib/api/http";
import { workflowsPage } from "@/lib/api/workflows";

export const dynamic = "force-dynamic";

/** The workflows and targets this identity may request, with their fields and limits, a page at a time. */
export const GET = apiRoute({ name: "workflows.list", scope: "requests:read", run: (who, { request }) => workflowsPage(who, request) });
