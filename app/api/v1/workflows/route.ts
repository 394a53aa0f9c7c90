import { apiRoute } from "@/lib/api/http";
import { workflowsFor } from "@/lib/workflows/catalog";

export const dynamic = "force-dynamic";

/** The workflows and targets this identity may request, with their fields and limits. */
export const GET = apiRoute({ name: "workflows.list", scope: "requests:read", run: async (who) => ({ workflows: workflowsFor(who) }) });
