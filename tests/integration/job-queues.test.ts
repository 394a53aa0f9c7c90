import { randomBytes } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { sql } from "../helpers/database";
import { prepareDatabase } from "../../scripts/support/prepare-database";
import { QUEUES } from "@/lib/jobs/queue";

/** What every instance does at start (scripts/serve.ts): migrations, then pg-boss's schema and Latchkey's queues. */
describe("instances preparing one new database at once", () => {
  it("each gets the schema and every queue; none fails", async () => {
    const admin = inject("pgAdminUrl");
    for (let round = 0; round < 3; round++) {
      const name = `latchkey_queues_${randomBytes(6).toString("hex")}`;
      const url = Object.assign(new URL(admin), { pathname: `/${name}` }).toString();
      await sql(admin, `CREATE DATABASE "${name}"`);
      try {
        const started = await Promise.allSettled([0, 1, 2].map(() => prepareDatabase(url)));
        expect(started.map((s) => (s.status === "rejected" ? String(s.reason) : "ok"))).toEqual(["ok", "ok", "ok"]);
        const queues = await sql(url, `SELECT name FROM pgboss.queue WHERE name = ANY($1)`, [Object.values(QUEUES)]);
        expect(queues.rows.map((r: { name: string }) => r.name).sort()).toEqual(Object.values(QUEUES).sort());
      } finally {
        await sql(admin, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }
    }
  });
});
