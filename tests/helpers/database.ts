import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { prepareDatabase } from "../../scripts/support/prepare-database";

/** A fresh, migrated database of its own for one test file; `drop` removes it. */
export async function createTestDatabase(prefix = "latchkey_test"): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = inject("pgAdminUrl");
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const url = new URL(admin);
  url.pathname = `/${name}`;
  await prepareDatabase(url.toString());
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

/** One statement on its own connection: for setting up or inspecting databases beside the app's. */
export async function sql(url: string, text: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}
