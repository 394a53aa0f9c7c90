import pg from "pg";
import { migrate } from "../../lib/db/migrate";
import { installQueues } from "../../lib/jobs/queue";

/** Creates the database if it is missing, applies migrations and installs the job queues. */
export async function prepareDatabase(databaseUrl: string): Promise<{ applied: string[] }> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
  const result = await migrate(databaseUrl);
  await installQueues(databaseUrl);
  return result;
}
