import { postgresGrants, roleNameFor, type DatabaseGrants } from "../../integrations/postgres/database-grants";
import type { TargetDefinition } from "../../policy/schema";
import { ExecutionFailure, type QueuedWorkflow } from "../types";
import { databaseAccessDefinition, type DatabaseAccessInput } from "./definition";

/** Which DatabaseGrants serves a target: the connection named in the policy, read from the environment. */
function grantsFor(target: TargetDefinition | undefined): {
  grants: DatabaseGrants;
  schema: string;
  privileges: NonNullable<TargetDefinition["database"]>["privileges"];
} {
  const database = target?.database;
  if (!database) throw new ExecutionFailure(`${target?.title ?? "This target"} has no database connection in the policy.`);
  const url = process.env[database.connectionEnv];
  if (!url) throw new ExecutionFailure(`${database.connectionEnv} is not set, so Latchkey cannot reach ${target.title}.`);
  return { grants: postgresGrants(url), schema: database.schema, privileges: database.privileges };
}

/**
 * Database access: approval creates a login role that expires with the grant (VALID UNTIL),
 * and its connection string is shown to the requester once. Expiry and revocation end
 * the role's open sessions and drop it.
 */
export const databaseAccess = {
  ...databaseAccessDefinition,
  kind: "queued",
  async revoke() {
    // The role is dropped by undo, on the queue, retried until done.
  },
  async perform({ request, target, input, expiresAt }) {
    const { grants, schema, privileges } = grantsFor(target);
    const allowed = privileges[input.role];
    if (!allowed) throw new ExecutionFailure(`The policy gives the access level "${input.role}" no privileges on ${target.title}.`);
    const login = await grants.grant({ role: roleNameFor(request.id), validUntil: expiresAt, schema, privileges: allowed });
    return { audit: { role: login.role, schema, privileges: allowed.join(", "), validUntil: expiresAt.toISOString() }, secret: login.connectionString };
  },
  async undo({ request, target }) {
    const { grants } = grantsFor(target);
    await grants.revoke(roleNameFor(request.id));
  },
} satisfies QueuedWorkflow<DatabaseAccessInput, "database-access">;
