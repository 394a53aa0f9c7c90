"use server";

import { z } from "zod";
import { breakGlass, cancelRequest, requestExtension, createRequest, decide, revealCredential, reviewBreakGlass, revokeGrant } from "@/lib/approvals/engine";
import { safeAction } from "@/lib/actions/safe-action";

const requestId = z.string().min(1).max(64);

export const createRequestAction = safeAction({
  name: "request.create",
  roles: ["requester"],
  // The workflow's own schema validates `input` inside the engine (strict: unknown fields are refused).
  input: z.object({ workflowId: z.string().min(1).max(64), input: z.record(z.string(), z.unknown()) }),
  run: async (who, { workflowId, input }) => {
    const request = await createRequest(who, workflowId, input);
    return { id: request.id };
  },
});

export const breakGlassAction = safeAction({
  name: "request.break-glass",
  roles: ["requester"],
  input: z.object({ workflowId: z.string().min(1).max(64), input: z.record(z.string(), z.unknown()), reason: z.string().max(1000) }),
  run: async (who, { workflowId, input, reason }) => ({ id: (await breakGlass(who, workflowId, input, reason)).id }),
});

export const reviewBreakGlassAction = safeAction({
  name: "request.review-break-glass",
  roles: ["approver"],
  input: z.object({ requestId, comment: z.string().max(2000) }),
  run: async (who, input) => ({ reviewedAt: (await reviewBreakGlass(who, input)).reviewedAt }),
});

export const decideAction = safeAction({
  name: "request.decide",
  input: z.object({ requestId, decision: z.enum(["approve", "reject"]), comment: z.string().max(2000) }),
  run: async (who, input) => {
    const request = await decide(who, input);
    return { status: request.status };
  },
});

export const extendAction = safeAction({
  name: "grant.extend",
  roles: ["requester"],
  input: z.object({
    requestId,
    durationMinutes: z.coerce.number().int().positive({ message: "Enter a duration of at least one minute." }),
    justification: z.string().max(1000),
  }),
  run: async (who, input) => ({ id: (await requestExtension(who, input)).id }),
});

export const revokeAction = safeAction({
  name: "grant.revoke",
  input: z.object({ requestId, reason: z.string().max(500) }),
  run: async (who, input) => ({ status: (await revokeGrant(who, input)).status }),
});

export const cancelAction = safeAction({
  name: "request.cancel",
  input: z.object({ requestId }),
  run: async (who, { requestId }) => ({ status: (await cancelRequest(who, requestId)).status }),
});

export const revealCredentialAction = safeAction({
  name: "credential.reveal",
  input: z.object({ requestId }),
  run: async (who, { requestId }) => {
    const { token, expiresAt } = await revealCredential(who, requestId);
    return { token, expiresAt: expiresAt.toISOString() };
  },
});
