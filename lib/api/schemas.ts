import { RequestStatus } from "@prisma/client";
import { z } from "zod";

/**
 * The shapes of /api/v1 as zod schemas, one source for three things: the routes validate
 * bodies with them, lib/api/views.ts is typed by them (so an answer cannot grow a field the
 * document lacks, or lose one it promises), and lib/api/openapi.ts generates the OpenAPI
 * document's schemas from them. Dates are Date here and ISO 8601 strings on the wire.
 */

export const requestStatusSchema = z.enum(RequestStatus);
const time = z.date();
const nullableTime = z.date().nullable();

// ---- Bodies (validated by the routes; documented in input form) ----

export const createRequestBody = z
  .object({
    workflowId: z.string().min(1).max(64),
    input: z.record(z.string(), z.unknown()).describe("The workflow's fields (see /workflows): targetId, role, durationMinutes, justification, …"),
  })
  .strict();
export const approveBody = z.object({ comment: z.string().max(2000).default("") }).strict();
export const rejectBody = z.object({ comment: z.string().max(2000) }).strict();
export const revokeBody = z.object({ reason: z.string().max(500).optional() }).strict();

// ---- Answers ----

export const problemSchema = z
  .object({
    type: z.string().describe("urn:latchkey:problem:<code>"),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe("Latchkey's stable error code (an RFC 9457 extension member)."),
    fields: z.record(z.string(), z.string()).optional().describe("Which inputs are wrong, and why."),
    scope: z.string().optional().describe("The scope the token lacks (insufficient_scope)."),
  })
  .describe("RFC 9457 problem details.");

export const requestSummarySchema = z.object({
  id: z.string(),
  workflowId: z.string(),
  targetId: z.string(),
  targetTitle: z.string(),
  workflowTitle: z.string(),
  fields: z
    .array(z.object({ name: z.string(), label: z.string(), value: z.string(), format: z.enum(["text", "json", "multiline"]) }))
    .describe("What the requester filled in, labelled by the workflow's schema, in the form's order: what an approver decides on."),
  status: requestStatusSchema,
  requester: z.string(),
  input: z.unknown(),
  justification: z.string(),
  durationSeconds: z.number().int(),
  breakGlass: z.boolean(),
  createdAt: time,
  activatedAt: nullableTime,
  expiresAt: nullableTime,
});

export const requestSchema = requestSummarySchema.extend({
  autoApprovedBy: z.string().nullable(),
  decidedAt: nullableTime,
  endedAt: nullableTime,
  failureReason: z.string().nullable(),
  externalState: z.string().nullable(),
  breakGlassReason: z.string().nullable(),
  extends: z
    .object({
      id: z.string(),
      status: requestStatusSchema,
      expiresAt: nullableTime,
      changes: z.array(z.object({ label: z.string(), from: z.string(), to: z.string() })),
    })
    .nullable()
    .describe("The grant this request extends and, field by field, what it changes."),
  stages: z.array(
    z.object({
      name: z.string(),
      groups: z.array(z.string()),
      required: z.number().int(),
      state: z.enum(["passed", "current", "waiting", "closed"]),
      approvedBy: z.array(z.string()),
      couldApprove: z.array(z.string()),
    }),
  ),
  decisions: z.array(z.object({ approver: z.string(), decision: z.enum(["approve", "reject"]), comment: z.string(), stage: z.number().int(), at: time })),
  credential: z
    .object({ jti: z.string(), kid: z.string(), issuedAt: time, expiresAt: time, revealedAt: nullableTime, revokedAt: nullableTime, revealable: z.boolean() })
    .nullable()
    .describe("The credential's metadata; the credential itself only from POST /requests/{id}/credential, once."),
  secretRevealable: z.boolean(),
  outsidePreview: z
    .object({
      system: z.string(),
      calls: z.array(z.object({ method: z.string(), path: z.string(), body: z.unknown().optional(), when: z.string().optional() })),
      notes: z.array(z.string()),
    })
    .nullable()
    .describe("What carrying out the request sends to an outside system, call by call (null for workflows that call none)."),
  viewer: z.object({ canDecide: z.boolean(), decisionRefusal: z.string().nullable(), canCancel: z.boolean(), canRevoke: z.boolean() }),
});

export const workflowSchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  category: z.string(),
  risk: z.enum(["low", "medium", "high"]),
  lasting: z.boolean().describe("true: grants access for a duration; false: a one-off action such as a job run."),
  fields: z.array(
    z.object({
      name: z.string(),
      label: z.string(),
      help: z.string().optional(),
      kind: z.enum(["text", "longtext", "number", "select", "multiselect", "duration", "boolean"]),
      required: z.boolean(),
      options: z.array(z.string()).optional(),
      optionsFrom: z.string().optional(),
    }),
  ),
  targets: z.array(
    z.object({
      id: z.string(),
      title: z.string(),
      roles: z.array(z.string()),
      minDurationMinutes: z.number().int(),
      maxDurationMinutes: z.number().int().nullable(),
      stages: z.array(z.object({ name: z.string(), groups: z.array(z.string()), required: z.number().int() })),
      available: z.boolean(),
      unavailableReason: z.string().nullable(),
    }),
  ),
});

export const meSchema = z.object({
  id: z.string(),
  email: z.string(),
  groups: z.array(z.string()),
  roles: z.array(z.string()),
  requestOnly: z.boolean(),
  token: z.object({ kind: z.enum(["personal_token", "service_token"]), tokenId: z.string(), scopes: z.array(z.string()) }),
});

export const credentialSchema = z.object({ credential: z.string().describe("The credential (a JWT). It is never shown again."), expiresAt: time });

const page = <T extends z.ZodType>(key: string, items: T) =>
  z.object({
    [key]: z.array(items),
    next: z.string().nullable().describe("Path and query of the next page (relative to the API's origin); null on the last page."),
  });
export const requestPageSchema = page("requests", requestSummarySchema);
export const workflowPageSchema = page("workflows", workflowSchema);

/** Named schemas, as the document's components. */
export const COMPONENTS = {
  Problem: problemSchema,
  RequestStatus: requestStatusSchema,
  RequestSummary: requestSummarySchema,
  Request: requestSchema,
  Workflow: workflowSchema,
  Me: meSchema,
  Credential: credentialSchema,
  RequestPage: requestPageSchema,
  WorkflowPage: workflowPageSchema,
} as const;

export type RequestSummary = z.output<typeof requestSummarySchema>;
export type RequestDetail = z.output<typeof requestSchema>;
export type Workflow = z.output<typeof workflowSchema>;
export type Me = z.output<typeof meSchema>;
