import { z } from "zod";
import { approveBody, COMPONENTS, createRequestBody, rejectBody, revokeBody } from "./schemas";
import { SCOPES } from "../identity/tokens";

/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. Its schemas are
 * generated from the zod schemas the routes validate bodies with and the answers are typed
 * by (lib/api/schemas.ts); this file adds what zod cannot know: paths, scopes, parameters,
 * headers and statuses. Tests hold every route file (methods and scope) against it both
 * ways, and validate real answers of every route against it.
 */

/** Dates are Date in the schemas and ISO 8601 strings on the wire. */
const override = (ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }) => {
  if ((ctx.zodSchema as { _zod: { def: { type: string } } })._zod.def.type === "date") Object.assign(ctx.jsonSchema, { type: "string", format: "date-time" });
};

function componentSchemas(): Record<string, object> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: "output",
    target: "draft-2020-12",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
    override,
  });
  // Within a document, components carry neither $schema nor $id (their place names them).
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema]));
}

/** A request body as the caller sends it (defaults may be left out). */
const body = (schema: z.ZodType) => {
  const { $schema: _s, ...json } = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", override });
  return { required: true, content: { "application/json": { schema: json } } };
};

const ref = (name: keyof typeof COMPONENTS) => ({ $ref: `#/components/schemas/${name}` });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
/** The token's budget rides on every answer after the token check. */
const RATE = {
  "RateLimit-Limit": header("RateLimit-Limit"),
  "RateLimit-Remaining": header("RateLimit-Remaining"),
  "RateLimit-Reset": header("RateLimit-Reset"),
};
const json = (schema: object) => ({ headers: RATE, content: { "application/json": { schema } } });
const error = (description: string) => ({ description, headers: RATE, content: { "application/problem+json": { schema: ref("Problem") } } });
/** A list answers a page at a time: `limit` and `cursor` in, `next` (and a Link header) out. */
const PAGE_PARAMS = [
  { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 200, default: 50 }, description: "Items per page." },
  { name: "cursor", in: "query", required: false, schema: { type: "string" }, description: "Opaque; taken from the previous page's `next` link." },
];
const page = (schema: "RequestPage" | "WorkflowPage", description: string) => ({
  description,
  headers: { ...RATE, Link: { description: 'RFC 8288: `<next>; rel="next"` when there is a next page.', schema: { type: "string" } } },
  content: { "application/json": { schema: ref(schema) } },
});

const ERRORS = {
  "401": error("No token, or a token that is unknown, revoked or expired."),
  "403": error("The token lacks the scope, or its identity may not do this."),
  "429": error("Too many calls from this token or address; Retry-After says when to try again."),
};
const ON_REQUEST = { ...ERRORS, "404": error("No such request, or not one this identity may see.") };

const idParam = [{ name: "id", in: "path", required: true, schema: { type: "string" } }];

function op(scope: keyof typeof SCOPES, summary: string, extra: Record<string, unknown>) {
  return { summary, "x-latchkey-scope": scope, security: [{ bearer: [] }], ...extra };
}

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "Latchkey API",
    version: "1.0.0",
    description:
      "Automation and AI agents use the same approval engine as people. Authenticate with an API token (Authorization: Bearer lkp_… or lks_…) made on the Tokens page or by an admin for a service identity. A token never approves a request its own identity made, nor one made by its party: a service identity and its owners are one party.",
  },
  servers: [{ url: "/api/v1" }],
  components: {
    headers: {
      "RateLimit-Limit": { description: "Calls this token may make per window.", schema: { type: "integer" } },
      "RateLimit-Remaining": { description: "Calls left in this window (errs low across instances).", schema: { type: "integer" } },
      "RateLimit-Reset": { description: "Seconds until the window resets.", schema: { type: "integer" } },
    },
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description: `API token. Scopes: ${Object.entries(SCOPES)
          .map(([k, v]) => `${k}: ${v}`)
          .join(" ")}`,
      },
    },
    schemas: {
      ...componentSchemas(),
    },
  },
  paths: {
    "/me": {
      get: op("requests:read", "Who this token speaks for", {
        responses: { "200": { description: "The identity, its roles and the token's scopes.", ...json(ref("Me")) }, ...ERRORS },
      }),
    },
    "/workflows": {
      get: op("requests:read", "Workflows and targets this identity may request", {
        parameters: PAGE_PARAMS,
        responses: { "200": page("WorkflowPage", "Requestable workflows, a page at a time."), "400": error("Bad limit or cursor."), ...ERRORS },
      }),
    },
    "/requests": {
      get: op("requests:read", "This identity's requests, newest first", {
        parameters: PAGE_PARAMS,
        responses: { "200": page("RequestPage", "Requests, a page at a time."), "400": error("Bad limit or cursor."), ...ERRORS },
      }),
      post: op("requests:write", "Make a request", {
        parameters: [
          {
            name: "Idempotency-Key",
            in: "header",
            required: false,
            schema: { type: "string", minLength: 1, maxLength: 255 },
            description:
              "Makes a retry safe for 24 hours: the same key and body replay the first answer (with Idempotent-Replayed: true); the same key with another body is a 422. A refused call is not remembered.",
          },
        ],
        requestBody: body(createRequestBody),
        responses: {
          "201": {
            description: "The request, pending or already approved by an auto-approval rule.",
            ...json(ref("Request")),
            headers: {
              ...RATE,
              Location: { description: "The new request: /api/v1/requests/{id}.", schema: { type: "string" } },
              "Idempotent-Replayed": { description: "true when this is the first answer replayed for an Idempotency-Key.", schema: { type: "string" } },
            },
          },
          "400": error("A field is wrong; `fields` says which and why."),
          ...ERRORS,
          "404": error("No such workflow."),
          "409": error("A call with this Idempotency-Key is still being made."),
          "422": error("This Idempotency-Key was used with a different body."),
          "413": error("Body too large."),
          "415": error("Body is not application/json."),
        },
      }),
    },
    "/requests/{id}": {
      get: op("requests:read", "A request's status, stages, decisions and credential metadata", {
        parameters: idParam,
        responses: { "200": { description: "The request.", ...json(ref("Request")) }, ...ON_REQUEST },
      }),
    },
    "/requests/{id}/approve": {
      post: op("approvals:write", "Approve a request", {
        parameters: idParam,
        requestBody: body(approveBody),
        responses: {
          "200": { description: "The request after the approval.", ...json(ref("Request")) },
          "400": error("Invalid body."),
          ...ON_REQUEST,
          "409": error("Already decided, or already approved by this identity."),
        },
      }),
    },
    "/requests/{id}/reject": {
      post: op("approvals:write", "Reject a request", {
        parameters: idParam,
        requestBody: body(rejectBody),
        responses: {
          "200": { description: "The rejected request.", ...json(ref("Request")) },
          "400": error("No reason given."),
          ...ON_REQUEST,
          "409": error("Already decided."),
        },
      }),
    },
    "/requests/{id}/cancel": {
      post: op("requests:write", "Withdraw a pending request", {
        parameters: idParam,
        responses: { "200": { description: "The cancelled request.", ...json(ref("Request")) }, ...ON_REQUEST, "409": error("No longer pending.") },
      }),
    },
    "/requests/{id}/revoke": {
      post: op("requests:write", "End an active grant early (its requester or an admin)", {
        parameters: idParam,
        requestBody: body(revokeBody),
        responses: { "200": { description: "The revoked request.", ...json(ref("Request")) }, ...ON_REQUEST, "409": error("Not an active grant.") },
      }),
    },
    "/requests/{id}/credential": {
      post: op("credentials:read", "Receive the credential of an active grant, once", {
        parameters: idParam,
        responses: {
          "200": { description: "The credential. It is never shown again.", ...json(ref("Credential")) },
          ...ON_REQUEST,
          "409": error("Not active, or already shown once."),
        },
      }),
    },
    "/approvals": {
      get: op("approvals:write", "Pending requests this identity could approve now", {
        parameters: PAGE_PARAMS,
        responses: {
          "200": page("RequestPage", "Requests waiting for this identity, oldest first, a page at a time."),
          "400": error("Bad limit or cursor."),
          ...ERRORS,
        },
      }),
    },
  },
} as const;
