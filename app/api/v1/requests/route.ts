import { apiRoute } from "@/lib/api/http";
import { makeRequest, requestsPage } from "@/lib/api/requests";
import { createRequestBody } from "@/lib/api/schemas";

export const dynamic = "force-dynamic";

/** This identity's requests, newest first, a page at a time (`limit`, `cursor`). */
export const GET = apiRoute({ name: "requests.list", scope: "requests:read", run: (who, { request }) => requestsPage(who, request) });

/** Makes a request through the same engine and policy as the portal's form: 201 with Location; honours Idempotency-Key. */
export const POST = apiRoute({
  name: "requests.create",
  scope: "requests:write",
  // The workflow's own schema validates `input` inside the engine (strict: unknown fields are refused).
  body: createRequestBody,
  run: (who, { body, request }) => makeRequest(who, body, request),
});
