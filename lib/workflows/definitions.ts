import type { z } from "zod";
import { databaseAccessDefinition } from "./database-access/definition";
import { openRouteDefinition } from "./open-route/definition";
import { restartJobDefinition } from "./restart-job/definition";
import { temporaryAccessDefinition } from "./temporary-access/definition";
import { triggerDagDefinition } from "./trigger-dag/definition";
import type { WorkflowDefinition } from "./types";

/**
 * Every workflow Latchkey ships, as the browser may know it: ids, labels and form schemas,
 * no server code, so the generated form validates with the very schema the server uses.
 * This list is the one declaration of which workflows exist; lib/workflows/registry.ts must
 * give each one its server part, and the compiler refuses a registry that misses one.
 */
const DEFINITIONS = [temporaryAccessDefinition, openRouteDefinition, databaseAccessDefinition, triggerDagDefinition, restartJobDefinition] as const;

export type WorkflowId = (typeof DEFINITIONS)[number]["id"];

/** The form schema of each shipped workflow, by id: what the browser's form validates with. */
export const WORKFLOW_SCHEMAS: Readonly<Record<string, z.ZodObject>> = Object.fromEntries(DEFINITIONS.map((d) => [d.id, d.inputSchema]));

/** Workflows added at run time (a test's), through lib/workflows/registry.ts's registerWorkflow. */
const added = new Map<string, WorkflowDefinition>();

export function addDefinition(definition: WorkflowDefinition): void {
  added.set(definition.id, definition);
}

export function workflowDefinition(id: string): WorkflowDefinition | undefined {
  return (DEFINITIONS as readonly WorkflowDefinition[]).find((d) => d.id === id) ?? added.get(id);
}
