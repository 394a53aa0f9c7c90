import { databaseAccess } from "./database-access/server";
import { addDefinition, workflowDefinition, type WorkflowId } from "./definitions";
import { openRoute } from "./open-route/server";
import { restartJob } from "./restart-job/server";
import { temporaryAccess } from "./temporary-access/server";
import { triggerDag } from "./trigger-dag/server";
import type { WorkflowModule } from "./types";

/**
 * Every workflow Latchkey offers, with its server part: one line per workflow, keyed by the
 * ids of lib/workflows/definitions.ts. The type below makes the compiler refuse a workflow
 * declared there without a line here, a line here for no declared workflow, and a line whose
 * module carries another workflow's id.
 */
const SHIPPED: { [Id in WorkflowId]: WorkflowModule & { id: Id } } = {
  "temporary-access": temporaryAccess,
  "open-route": openRoute,
  "database-access": databaseAccess,
  "trigger-dag": triggerDag,
  "restart-job": restartJob,
};

const workflows: WorkflowModule[] = Object.values(SHIPPED);

/** Adds a workflow at run time (a test's): its folder and this one call. Ids are unique. */
export function registerWorkflow(workflow: WorkflowModule): void {
  if (workflowDefinition(workflow.id)) throw new Error(`A workflow "${workflow.id}" is already registered.`);
  addDefinition(workflow);
  workflows.push(workflow);
}

export function listWorkflows(): readonly WorkflowModule[] {
  return workflows;
}

export function getWorkflow(id: string): WorkflowModule | undefined {
  return workflows.find((w) => w.id === id);
}
