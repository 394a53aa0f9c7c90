import { triggerDag } from "../integrations/airflow/trigger-workflow";
import { openRoute } from "../integrations/haproxy/workflow";
import { databaseAccess } from "../integrations/postgres/workflow";
import { restartJob } from "./restart-job";
import { temporaryAccess } from "./temporary-access";
import type { WorkflowModule } from "./types";

/** Every workflow Latchkey offers. Adding one is one line here and one folder beside it. */
const workflows: WorkflowModule[] = [temporaryAccess, openRoute, databaseAccess, triggerDag, restartJob] as unknown as WorkflowModule[];

/** Adds a workflow (an integration's, or a test's). Ids are unique. */
export function registerWorkflow(workflow: WorkflowModule): void {
  if (workflows.some((w) => w.id === workflow.id)) throw new Error(`A workflow "${workflow.id}" is already registered.`);
  workflows.push(workflow);
}

export function listWorkflows(): readonly WorkflowModule[] {
  return workflows;
}

export function getWorkflow(id: string): WorkflowModule | undefined {
  return workflows.find((w) => w.id === id);
}
