import { z } from "zod";
import { createRequest } from "@/lib/approvals/engine";
import { listMyRequests } from "@/lib/approvals/queries";
import { apiRoute } from "@/lib/api/http";
import { requestDetail, requestSummary } from "@/lib/api/views";

export const dynamic = "force-dynamic";

/** This identity's requests, newest first. */
export const GET = apiRoute({ name: "requests.list", scope: "requests:read", run: async (who) => ({ requests: (await listMyRequests(who)).map(requestSummary) }) });

/** Makes a request through the same engine and policy as the portal's form. */
export const POST = apiRoute({
  name: "requests.create",
  scope: "requests:write",
  status: 201,
  // The workflow's own schema validates `input` inside the engine (strict: unknown fields are refused).
  body: z.object({ workflowId: z.string().min(1).max(64), input: z.record(z.string(), z.unknown()) }).strict(),
  run: async (who, { body }) => requestDetail(who, (await createRequest(who, body.workflowId, body.input)).id),
});
