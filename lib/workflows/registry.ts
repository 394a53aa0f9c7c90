import { restartJob } from "./restart-job";
import { temporaryAccess } from "./temporary-access";
import type { WorkflowModule } from "./types";

/** Every workflow Latchkey offers. Adding one is one line here and one folder beside it. */
const workflows: WorkflowModule[] = [temporaryAccess, restartJob] as unknown as WorkflowModule[];

export function listWorkflows(): readonly WorkflowModule[] {
  return workflows;
}

export function getWorkflow(id: string): WorkflowModule | undefined {
  return workflows.find((w) => w.id === id);
}
