import { z } from "zod";
import { apiRoute } from "@/lib/api/http";
import { makeRequest, requestsPage } from "@/lib/api/requests";

export const dynamic = "force-dynamic";

/** This identity's requests, newest first, a page at a time (`limit`, `cursor`). */
export const GET = apiRoute({ name: "requests.list", scope: "requests:read", run: (who, { request }) => requestsPage(who, request) });

/** Makes a request through the same engine and policy as the portal's form: 201 with Location; honours Idempotency-Key. */
export const POST = apiRoute({
  name: "requests.create",
  scope: "requests:write",
  // The workflow's own schema validates `input` inside the engine (strict: unknown fields are refused).
  body: z.object({ workflowId: z.string().min(1).max(64), input: z.record(z.string(), z.unknown()) }).strict(),
  run: (who, { body, request }) => makeRequest(who, body, request),
});
