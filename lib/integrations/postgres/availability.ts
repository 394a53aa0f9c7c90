import type { TargetDefinition } from "../../policy/schema";
import type { Environment, Unavailable } from "../../workflows/types";
import { missingSettings } from "../adapter";

/**
 * Whether the workflows that use PostgreSQL can be carried out on a target here. A file of its own,
 * pure, because workflow definitions import it and reach the browser with the form; the
 * adapter would bring its health probe along.
 */
/** Why logins cannot be issued on this target here, or null. */
export function postgresUnavailable(target: TargetDefinition, env: Environment): Unavailable | null {
  return target.database
    ? missingSettings(`The database connection of ${target.title}`, [target.database.connectionEnv], env)
    : { reason: `${target.title} has no database connection in the policy.`, missing: [] };
}
