import { z } from "zod";
import type { QueuedWorkflow } from "@/lib/workflows/types";

/**
 * The fault tests' workflow: a grant on an outside system the test supplies (a table of the
 * test database), so double executions and double revocations can be counted.
 */
export function faultWorkflow(outside: Pick<QueuedWorkflow, "perform" | "undo">): QueuedWorkflow {
  return {
    id: "fault-grant",
    title: "Fault drill grant",
    description: "A grant on an outside system that records each call",
    category: "Test",
    risk: "low",
    lasting: true,
    inputSchema: z.object({ targetId: z.string(), durationMinutes: z.number().int(), justification: z.string().min(10) }).strict() as never,
    kind: "queued",
    async revoke() {},
    ...outside,
  };
}
