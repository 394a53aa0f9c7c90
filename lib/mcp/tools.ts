import "server-only";
import { z } from "zod";
import { cancelRequest, revealCredential, revokeGrant } from "../approvals/engine";
import { requestVersion } from "../approvals/live";
import { madeRequestDetail, requestDetail } from "../api/views";
import type { Scope } from "../identity/tokens";
import type { Principal } from "../policy/evaluate";
import { workflowsFor } from "../workflows/catalog";

/**
 * What an AI agent may do through MCP: the requester's half of Latchkey. Each tool names the
 * token scope it needs (the same as the REST route that does the same thing) and calls the
 * same engine. There is deliberately no tool to approve, reject or review: agents request,
 * people decide. Adding one would break that promise, so a test lists the tools by name.
 */

/** Statuses a request no longer leaves on its own: waiting ends at one of them. */
export const SETTLED = ["active", "completed", "rejected", "expired", "revoked", "cancelled", "failed"] as const;

/** The longest one wait_for_decision call waits; an agent calls it again to wait longer. */
export const MAX_WAIT_SECONDS = 300;

const id = z.string().min(1).max(64).describe("The request's id, as create_request answered it.");

export interface ToolContext {
  /** Reports how far a long call has come (MCP progress notifications), when the client asked for it. */
  progress: (done: number, total: number, message: string) => Promise<void>;
  signal: AbortSignal;
  /** Between polls of wait_for_decision; a test may shorten it. */
  pollMs: number;
}

interface Tool<S extends z.ZodRawShape> {
  title: string;
  description: string;
  scope: Scope;
  input: S;
  /** Does not change anything (MCP's readOnlyHint), so a client may call it without asking. */
  readOnly: boolean;
  run: (who: Principal, args: z.infer<z.ZodObject<S>>, context: ToolContext) => Promise<unknown>;
}

const tool = <S extends z.ZodRawShape>(definition: Tool<S>) => definition;

export const TOOLS = {
  list_workflows: tool({
    title: "List what you may request",
    description:
      "The workflows and targets this token's identity may request, with each workflow's fields (name, kind, required, options) and each target's roles, duration limits and approval stages.",
    scope: "requests:read",
    input: {},
    readOnly: true,
    run: async (who) => ({ workflows: workflowsFor(who) }),
  }),
  create_request: tool({
    title: "Request access",
    description:
      "Makes a request through the same policy and approvals as a person's. `input` holds the workflow's fields (see list_workflows), e.g. {targetId, role, durationMinutes, justification}. People approve it; call wait_for_decision to wait.",
    scope: "requests:write",
    input: { workflowId: z.string().min(1).max(64), input: z.record(z.string(), z.unknown()).describe("The workflow's fields, by name.") },
    readOnly: false,
    run: (who, args) => madeRequestDetail(who, args.workflowId, args.input),
  }),
  get_request: tool({
    title: "Read a request",
    description: "A request's status, approval stages, decisions and credential metadata (never the credential itself).",
    scope: "requests:read",
    input: { id },
    readOnly: true,
    run: async (who, args) => requestDetail(who, args.id),
  }),
  wait_for_decision: tool({
    title: "Wait for a decision",
    description: `Waits until the request is settled (active, completed, rejected, expired, revoked, cancelled or failed) or timeoutSeconds pass (at most ${MAX_WAIT_SECONDS}), reporting progress. Answers the request and whether it settled; call again to wait longer.`,
    scope: "requests:read",
    input: { id, timeoutSeconds: z.number().int().min(1).max(MAX_WAIT_SECONDS).default(60) },
    readOnly: true,
    run: async (who, args, context) => {
      const started = Date.now();
      const deadline = started + args.timeoutSeconds * 1000;
      for (;;) {
        // Each poll reads the request's status and newest event id (the live pages' version); the full view only once, to answer.
        const { status = "" } = await requestVersion(who, args.id);
        const settled = (SETTLED as readonly string[]).includes(status);
        const waited = Math.min(args.timeoutSeconds, Math.round((Date.now() - started) / 1000));
        await context.progress(settled ? args.timeoutSeconds : waited, args.timeoutSeconds, `The request is ${status}.`);
        if (settled || Date.now() >= deadline || context.signal.aborted) {
          const request = await requestDetail(who, args.id);
          return { settled: (SETTLED as readonly string[]).includes(request.status), status: request.status, request };
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(context.pollMs, Math.max(0, deadline - Date.now()))));
      }
    },
  }),
  reveal_credential: tool({
    title: "Receive the credential, once",
    description: "The credential of your active grant. It is shown once: a second call is refused, so keep it where the task needs it.",
    scope: "credentials:read",
    input: { id },
    readOnly: false,
    run: async (who, args) => {
      const { token, expiresAt } = await revealCredential(who, args.id);
      return { credential: token, expiresAt };
    },
  }),
  cancel_request: tool({
    title: "Withdraw a request",
    description: "Withdraws your request while nobody has decided it yet.",
    scope: "requests:write",
    input: { id },
    readOnly: false,
    run: async (who, args) => {
      await cancelRequest(who, args.id);
      return requestDetail(who, args.id);
    },
  }),
  revoke_grant: tool({
    title: "Give access back early",
    description: "Ends your active grant now (the credential stops working at once), e.g. when the task is done.",
    scope: "requests:write",
    input: { id, reason: z.string().max(500).optional() },
    readOnly: false,
    run: async (who, args) => {
      await revokeGrant(who, { requestId: args.id, reason: args.reason ?? "" });
      return requestDetail(who, args.id);
    },
  }),
};

export type ToolName = keyof typeof TOOLS;
