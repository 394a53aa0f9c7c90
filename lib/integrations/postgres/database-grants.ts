import { randomBytes } from "node:crypto";
import pg from "pg";
import { PRIVILEGES, type Privilege } from "./privileges";

/**
 * Database access that really expires: a login role per grant, with `VALID UNTIL` the
 * grant's end, and a revocation that also ends the sessions already open (VALID UNTIL only
 * stops new logins; Vault's database engine leaves open sessions running too).
 */

export interface DatabaseGrantSpec {
  /** `lk_` followed by lower-case letters, digits and underscores; derived from the request. */
  role: string;
  validUntil: Date;
  schema: string;
  privileges: Privilege[];
}

export interface IssuedLogin {
  role: string;
  password: string;
  connectionString: string;
}

export interface DatabaseGrants {
  /** Creates (or, on a retry, refreshes) the login role and grants the privileges. */
  grant(spec: DatabaseGrantSpec): Promise<IssuedLogin>;
  /** NOLOGIN, end open sessions, revoke everything, drop. A role already gone counts as revoked. */
  revoke(role: string): Promise<"revoked" | "already-gone">;
  ping(): Promise<void>;
}

const ROLE = /^lk_[a-z0-9_]{1,59}$/;

/** The role name for a request: stable, so a retried execution reuses the same role. */
export function roleNameFor(requestId: string): string {
  return `lk_${requestId.toLowerCase().replace(/[^a-z0-9]/g, "_")}`.slice(0, 63);
}

async function withClient<T>(connectionString: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export function postgresGrants(adminConnectionString: string): DatabaseGrants {
  return {
    async ping() {
      await withClient(adminConnectionString, (c) => c.query("SELECT 1"));
    },

    async grant(spec) {
      if (!ROLE.test(spec.role)) throw new Error(`"${spec.role}" is not a role name Latchkey issues.`);
      if (spec.privileges.length === 0 || spec.privileges.some((p) => !PRIVILEGES.includes(p))) throw new Error("Unknown or missing privileges.");
      const password = randomBytes(24).toString("base64url");
      const database = await withClient(adminConnectionString, async (c) => {
        const role = c.escapeIdentifier(spec.role);
        const schema = c.escapeIdentifier(spec.schema);
        await c.query("BEGIN");
        try {
          const { rows } = await c.query<{ db: string }>("SELECT current_database() AS db");
          const exists = (await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [spec.role])).rowCount;
          // Utility statements take no parameters: literals are escaped by the driver.
          const login = `LOGIN PASSWORD ${c.escapeLiteral(password)} VALID UNTIL ${c.escapeLiteral(spec.validUntil.toISOString())}`;
          await c.query(exists ? `ALTER ROLE ${role} WITH ${login}` : `CREATE ROLE ${role} WITH ${login} NOINHERIT`);
          await c.query(`GRANT CONNECT ON DATABASE ${c.escapeIdentifier(rows[0]!.db)} TO ${role}`);
          await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
          await c.query(`GRANT ${spec.privileges.join(", ")} ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
          // Inserting into a serial/identity column needs the sequence too.
          if (spec.privileges.includes("INSERT")) await c.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`);
          await c.query("COMMIT");
          return rows[0]!.db;
        } catch (error) {
          await c.query("ROLLBACK");
          throw error;
        }
      });
      const url = new URL(adminConnectionString);
      url.username = spec.role;
      url.password = password;
      url.pathname = `/${database}`;
      return { role: spec.role, password, connectionString: url.toString() };
    },

    async revoke(roleName) {
      if (!ROLE.test(roleName)) throw new Error(`"${roleName}" is not a role name Latchkey issues.`);
      return withClient(adminConnectionString, async (c) => {
        if (!(await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [roleName])).rowCount) return "already-gone";
        const role = c.escapeIdentifier(roleName);
        await c.query(`ALTER ROLE ${role} NOLOGIN`);
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", [roleName]);
        // Drops the role's privileges (and anything it owns) in this database, then the role.
        await c.query(`DROP OWNED BY ${role}`);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
        return "revoked";
      });
    },
  };
}
