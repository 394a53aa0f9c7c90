import { SCOPES } from "./tokens";

/**
 * The OpenAPI document of /api/v1, served at /api/v1/openapi.json. A test holds every
 * route file under app/api/v1 (its methods and its token scope) against this document,
 * both ways, so neither can drift from the other.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
/** The token's budget rides on every answer after the token check. */
const RATE = { "RateLimit-Limit": header("RateLimit-Limit"), "RateLimit-Remaining": header("RateLimit-Remaining"), "RateLimit-Reset": header("RateLimit-Reset") };
const json = (schema: object) => ({ headers: RATE, content: { "application/json": { schema } } });
const error = (description: string) => ({ description, headers: RATE, content: { "application/problem+json": { schema: ref("Problem") } } });
/** A list answers a page at a time: `limit` and `cursor` in, `next` (and a Link header) out. */
const PAGE_PARAMS = [
  { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 200, default: 50 }, description: "Items per page." },
  { name: "cursor", in: "query", required: false, schema: { type: "string" }, description: "Opaque; taken from the previous page's `next` link." },
];
const page = (key: string, items: object, description: string) => ({
  description,
  headers: { ...RATE, Link: { description: 'RFC 8288: `<next>; rel="next"` when there is a next page.', schema: { type: "string" } } },
  content: { "application/json": { schema: { type: "object", required: [key, "next"], properties: { [key]: { type: "array", items }, next: { type: ["string", "null"], description: "Path and query of the next page (relative to the API's origin), null on the last page." } } } } },
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
      bearer: { type: "http", scheme: "bearer", description: `API token. Scopes: ${Object.entries(SCOPES).map(([k, v]) => `${k}: ${v}`).join(" ")}` },
    },
    schemas: {
      Problem: {
        type: "object",
        description: "RFC 9457 problem details. `code` (an extension member) is Latchkey's stable error code; `type` is urn:latchkey:problem:<code>.",
        required: ["type", "title", "status", "detail", "code"],
        properties: {
          type: { type: "string", format: "uri" },
          title: { type: "string" },
          status: { type: "integer" },
          detail: { type: "string" },
          code: { type: "string" },
          fields: { type: "object", additionalProperties: { type: "string" }, description: "Which inputs are wrong, and why." },
          scope: { type: "string", description: "The scope the token lacks (insufficient_scope)." },
        },
      },
      RequestStatus: { type: "string", enum: ["pending", "approved", "executing", "active", "completed", "expired", "revoked", "rejected", "cancelled", "failed"] },
      RequestSummary: {
        type: "object",
        required: ["id", "workflowId", "targetId", "status", "requester", "createdAt"],
        properties: {
          id: { type: "string" },
          workflowId: { type: "string" },
          targetId: { type: "string" },
          targetTitle: { type: "string" },
          workflowTitle: { type: "string" },
          fields: {
            type: "array",
            description: "What the requester filled in, labelled by the workflow's schema, in the form's order: what an approver decides on.",
            items: {
              type: "object",
              required: ["name", "label", "value"],
              properties: { name: { type: "string" }, label: { type: "string" }, value: { type: "string" }, format: { type: "string", enum: ["text", "json", "multiline"] } },
            },
          },
          status: ref("RequestStatus"),
          requester: { type: "string" },
          input: { type: "object" },
          justification: { type: "string" },
          durationSeconds: { type: "integer" },
          breakGlass: { type: "boolean" },
          createdAt: { type: "string", format: "date-time" },
          activatedAt: { type: ["string", "null"], format: "date-time" },
          expiresAt: { type: ["string", "null"], format: "date-time" },
        },
      },
      Request: {
        allOf: [
          ref("RequestSummary"),
          {
            type: "object",
            properties: {
              autoApprovedBy: { type: ["string", "null"] },
              decidedAt: { type: ["string", "null"], format: "date-time" },
              endedAt: { type: ["string", "null"], format: "date-time" },
              failureReason: { type: ["string", "null"] },
              externalState: { type: ["string", "null"] },
              breakGlassReason: { type: ["string", "null"] },
              extends: {
                type: ["object", "null"],
                description: "The grant this request extends and, field by field, what it changes.",
                properties: {
                  id: { type: "string" },
                  status: ref("RequestStatus"),
                  expiresAt: { type: ["string", "null"], format: "date-time" },
                  changes: { type: "array", items: { type: "object", properties: { label: { type: "string" }, from: { type: "string" }, to: { type: "string" } } } },
                },
              },
              stages: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    name: { type: "string" },
                    groups: { type: "array", items: { type: "string" } },
                    required: { type: "integer" },
                    state: { type: "string", enum: ["passed", "current", "waiting", "closed"] },
                    approvedBy: { type: "array", items: { type: "string" } },
                    couldApprove: { type: "array", items: { type: "string" } },
                  },
                },
              },
              decisions: {
                type: "array",
                items: { type: "object", properties: { approver: { type: "string" }, decision: { type: "string", enum: ["approve", "reject"] }, comment: { type: "string" }, stage: { type: "integer" }, at: { type: "string", format: "date-time" } } },
              },
              credential: {
                type: ["object", "null"],
                properties: {
                  jti: { type: "string" },
                  kid: { type: "string" },
                  issuedAt: { type: "string", format: "date-time" },
                  expiresAt: { type: "string", format: "date-time" },
                  revealedAt: { type: ["string", "null"], format: "date-time" },
                  revokedAt: { type: ["string", "null"], format: "date-time" },
                  revealable: { type: "boolean" },
                },
              },
              secretRevealable: { type: "boolean" },
              outsidePreview: {
                type: ["object", "null"],
                description: "What carrying out the request sends to an outside system, call by call, as the workflow builds it (null for workflows that call none).",
                properties: {
                  system: { type: "string" },
                  calls: { type: "array", items: { type: "object", properties: { method: { type: "string" }, path: { type: "string" }, body: {}, when: { type: "string" } } } },
                  notes: { type: "array", items: { type: "string" } },
                },
              },
              viewer: { type: "object", properties: { canDecide: { type: "boolean" }, decisionRefusal: { type: ["string", "null"] }, canCancel: { type: "boolean" }, canRevoke: { type: "boolean" } } },
            },
          },
        ],
      },
      Workflow: {
        type: "object",
        properties: {
          id: { type: "string" },
          title: { type: "string" },
          description: { type: "string" },
          category: { type: "string" },
          risk: { type: "string" },
          lasting: { type: "boolean", description: "true: grants access for a duration; false: a one-off action such as a job run." },
          fields: { type: "array", items: { type: "object", properties: { name: { type: "string" }, label: { type: "string" }, kind: { type: "string" }, required: { type: "boolean" }, options: { type: "array", items: { type: "string" } } } } },
          targets: {
            type: "array",
            items: {
              type: "object",
              properties: {
                id: { type: "string" },
                title: { type: "string" },
                roles: { type: "array", items: { type: "string" } },
                minDurationMinutes: { type: "integer" },
                maxDurationMinutes: { type: ["integer", "null"] },
                stages: { type: "array", items: { type: "object" } },
              },
            },
          },
        },
      },
    },
  },
  paths: {
    "/me": {
      get: op("requests:read", "Who this token speaks for", {
        responses: { "200": { description: "The identity, its roles and the token's scopes.", ...json({ type: "object" }) }, ...ERRORS },
      }),
    },
    "/workflows": {
      get: op("requests:read", "Workflows and targets this identity may request", {
        parameters: PAGE_PARAMS,
        responses: { "200": page("workflows", ref("Workflow"), "Requestable workflows, a page at a time."), "400": error("Bad limit or cursor."), ...ERRORS },
      }),
    },
    "/requests": {
      get: op("requests:read", "This identity's requests, newest first", {
        parameters: PAGE_PARAMS,
        responses: { "200": page("requests", ref("RequestSummary"), "Requests, a page at a time."), "400": error("Bad limit or cursor."), ...ERRORS },
      }),
      post: op("requests:write", "Make a request", {
        parameters: [
          {
            name: "Idempotency-Key",
            in: "header",
            required: false,
            schema: { type: "string", minLength: 1, maxLength: 255 },
            description: "Makes a retry safe for 24 hours: the same key and body replay the first answer (with Idempotent-Replayed: true); the same key with another body is a 422. A refused call is not remembered.",
          },
        ],
        requestBody: {
          required: true,
          ...json({
            type: "object",
            required: ["workflowId", "input"],
            additionalProperties: false,
            properties: {
              workflowId: { type: "string" },
              input: { type: "object", description: "The workflow's fields (see /workflows): targetId, role, durationMinutes, justification, …" },
            },
          }),
        },
        responses: {
          "201": {
            description: "The request, pending or already approved by an auto-approval rule.",
            ...json(ref("Request")),
            headers: { ...RATE, Location: { description: "The new request: /api/v1/requests/{id}.", schema: { type: "string" } }, "Idempotent-Replayed": { description: "true when this is the first answer replayed for an Idempotency-Key.", schema: { type: "string" } } },
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
        requestBody: { required: true, ...json({ type: "object", additionalProperties: false, properties: { comment: { type: "string", maxLength: 2000 } } }) },
        responses: { "200": { description: "The request after the approval.", ...json(ref("Request")) }, "400": error("Invalid body."), ...ON_REQUEST, "409": error("Already decided, or already approved by this identity.") },
      }),
    },
    "/requests/{id}/reject": {
      post: op("approvals:write", "Reject a request", {
        parameters: idParam,
        requestBody: { required: true, ...json({ type: "object", required: ["comment"], additionalProperties: false, properties: { comment: { type: "string", minLength: 1, maxLength: 2000 } } }) },
        responses: { "200": { description: "The rejected request.", ...json(ref("Request")) }, "400": error("No reason given."), ...ON_REQUEST, "409": error("Already decided.") },
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
        requestBody: { required: true, ...json({ type: "object", additionalProperties: false, properties: { reason: { type: "string", maxLength: 500 } } }) },
        responses: { "200": { description: "The revoked request.", ...json(ref("Request")) }, ...ON_REQUEST, "409": error("Not an active grant.") },
      }),
    },
    "/requests/{id}/credential": {
      post: op("credentials:read", "Receive the credential of an active grant, once", {
        parameters: idParam,
        responses: {
          "200": { description: "The credential. It is never shown again.", ...json({ type: "object", required: ["credential", "expiresAt"], properties: { credential: { type: "string" }, expiresAt: { type: "string", format: "date-time" } } }) },
          ...ON_REQUEST,
          "409": error("Not active, or already shown once."),
        },
      }),
    },
    "/approvals": {
      get: op("approvals:write", "Pending requests this identity could approve now", {
        parameters: PAGE_PARAMS,
        responses: { "200": page("requests", ref("RequestSummary"), "Requests waiting for this identity, oldest first, a page at a time."), "400": error("Bad limit or cursor."), ...ERRORS },
      }),
    },
  },
} as const;
