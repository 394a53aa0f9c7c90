import type { TargetDefinition } from "../policy/schema";

/**
 * Whether a workflow can be carried out on a target here: a workflow that changes an
 * outside system needs that system in the policy's target and its connection settings in
 * the environment. Checked before a request is made (catalog, form, server, `policy:check`),
 * so nobody approves what could only fail afterwards. Pure: the environment is passed in.
 */
export interface Unavailable {
  /** Said to everyone. */
  reason: string;
  /** Environment variables to set; said to admins only. */
  missing: string[];
}

type Environment = Record<string, string | undefined>;
type Check = (target: TargetDefinition, env: Environment) => Unavailable | null;

const unset = (env: Environment, names: string[]) => names.filter((n) => !env[n]);

function needs(system: string, names: string[], env: Environment): Unavailable | null {
  const missing = unset(env, names);
  return missing.length ? { reason: `${system} is not configured on this portal yet.`, missing } : null;
}

function airflow(target: TargetDefinition, env: Environment): Unavailable | null {
  if (!target.airflow) return { reason: `${target.title} has no Airflow connection in the policy.`, missing: [] };
  const a = target.airflow;
  return needs("Airflow", [a.urlEnv, a.userEnv, a.passwordEnv], env);
}

/** One line per workflow that reaches an outside system; the others are always available. */
const CHECKS: Record<string, Check> = {
  "open-route": (target, env) =>
    target.haproxy
      ? needs("The HAProxy integration", ["LATCHKEY_HAPROXY_SOCKET", "LATCHKEY_HAPROXY_MAP"], env)
      : { reason: `${target.title} has no HAProxy backend in the policy.`, missing: [] },
  "database-access": (target, env) =>
    target.database
      ? needs(`The database connection of ${target.title}`, [target.database.connectionEnv], env)
      : { reason: `${target.title} has no database connection in the policy.`, missing: [] },
  "trigger-dag": airflow,
  "restart-job": airflow,
};

export function unavailability(workflowId: string, target: TargetDefinition, env: Environment = process.env): Unavailable | null {
  return CHECKS[workflowId]?.(target, env) ?? null;
}

/** The sentence shown to a person, naming variables only for admins. */
export function unavailableMessage(u: Unavailable, forAdmin: boolean): string {
  if (forAdmin && u.missing.length) return `${u.reason} Set ${u.missing.join(", ")} and restart the portal.`;
  if (forAdmin) return `${u.reason} Add it to the policy.`;
  return `${u.reason} It cannot be requested until an admin sets it up.`;
}
