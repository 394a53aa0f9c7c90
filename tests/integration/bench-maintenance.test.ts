import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { watchMaintenance } from "../../scripts/support/pg-maintenance";
import { createTestDatabase } from "../helpers/database";

/**
 * bench:approvals' watch on PostgreSQL's autovacuum workers (scripts/support/pg-maintenance.ts)
 * against a real server: its question is one the server answers, look after look, and a look
 * that fails (its connection ended by the server) is counted, so that a phase it did not watch
 * is never reported as one without autovacuum.
 */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the bench's watch on autovacuum", () => {
  it("asks every few milliseconds and is answered, and counts the looks that fail once its connection is gone", async () => {
    const watch = await watchMaintenance(database.url, 20);
    try {
      await sleep(400);
      const answered = watch.counts();
      expect(answered.looks).toBeGreaterThanOrEqual(5);
      expect(answered.failures).toBe(0);
      // Whatever it saw is a worker at some work, at a numbered look.
      for (const sample of watch.samples()) expect(sample).toMatchObject({ look: expect.any(Number), pid: expect.any(Number), work: expect.any(String) });

      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%backend_type = ''autovacuum worker''%'`,
        );
        expect(rows).toEqual([{ ended: true }]);
      } finally {
        await admin.end();
      }
      // The server ends the connection a moment after it is asked to: looks answered until then still count.
      for (let waited = 0; watch.counts().failures === 0 && waited < 5_000; waited += 20) await sleep(20);
      const gone = watch.counts();
      expect(gone.failures).toBeGreaterThan(0);
      await sleep(300);
      const after = watch.counts();
      // Every look since fails, and is counted; none is answered.
      expect(after.failures - gone.failures).toBeGreaterThanOrEqual(3);
      expect(after.looks).toBe(gone.looks);
    } finally {
      await watch.stop();
    }
  });
});
