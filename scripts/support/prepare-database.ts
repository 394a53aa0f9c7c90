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

/** Drops a database of the server at `databaseUrl` if it exists, closing its connections (benchmarks' scratch databases). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = "/postgres";
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
