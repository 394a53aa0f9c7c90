import type { TargetDefinition } from "../../policy/schema";
import type { Environment, Unavailable } from "../../workflows/types";
import { missingSettings } from "../adapter";

/**
 * Whether the workflows that use Airflow can be carried out on a target here. A file of its own,
 * pure, because workflow definitions import it and reach the browser with the form; the
 * adapter would bring its health probe along.
 */
/** Why runs cannot be started on this target here, or null. */
export function airflowUnavailable(target: TargetDefinition, env: Environment): Unavailable | null {
  if (!target.airflow) return { reason: `${target.title} has no Airflow connection in the policy.`, missing: [] };
  const a = target.airflow;
  return missingSettings("Airflow", [a.urlEnv, a.userEnv, a.passwordEnv], env);
}
