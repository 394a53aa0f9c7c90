import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * Autovacuum on the tables every request and approval writes is paced (migration
 * 20261203093000_autovacuum_paced_on_busy_tables): each of those tables carries its own setting,
 * which wins over the server's, and no other table carries one.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
beforeAll(async () => {
  fx = await engineFixture();
});
afterAll(async () => {
  await fx?.close();
});

const BUSY = ["AuditEvent", "AccessRequest", "Approval", "Credential"];

async function options(): Promise<Record<string, string[] | null>> {
  const client = new pg.Client({ connectionString: fx.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ relname: string; reloptions: string[] | null }>(
      `SELECT relname, reloptions FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relname NOT LIKE '\\_%'`,
    );
    return Object.fromEntries(rows.map((r) => [r.relname, r.reloptions]));
  } finally {
    await client.end();
  }
}

describe("autovacuum on the busy tables", () => {
  it("pauses 20 ms after each round of work on the tables a request and its approval write, and leaves every other table to the server's setting", async () => {
    const found = await options();
    for (const table of BUSY) expect(found[table], table).toEqual(["autovacuum_vacuum_cost_delay=20"]);
    const others = Object.entries(found).filter(([table]) => !BUSY.includes(table));
    expect(others.length).toBeGreaterThan(10);
    for (const [table, reloptions] of others) expect(reloptions, table).toBeNull();
  });
});
