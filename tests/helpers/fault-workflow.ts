import { z } from "zod";
import type { WorkflowModule } from "@/lib/workflows/types";

/**
 * The fault tests' workflow: a grant on an outside system the test supplies (a table of the
 * test database), so double executions and double revocations can be counted.
 */
export function faultWorkflow(outside: Pick<WorkflowModule, "perform" | "undo">): WorkflowModule {
  return {
    id: "fault-grant",
    title: "Fault drill grant",
    description: "A grant on an outside system that records each call",
    category: "Test",
    risk: "low",
    lasting: true,
    inputSchema: z.object({ targetId: z.string(), durationMinutes: z.number().int(), justification: z.string().min(10) }).strict() as never,
    async execute() {
      return { audit: { queued: "yes" } };
    },
    async revoke() {},
    ...outside,
  };
}
