import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { migrate } from "@/lib/db/migrate";
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

/**
 * A database as the release before `migration` left it, for upgrade tests: created empty, with
 * every migration older than `migration` applied. `drop()` removes the database and the copy of
 * those migrations.
 */
export async function databaseBefore(migration: string, prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = inject("pgAdminUrl");
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const url = new URL(admin);
  url.pathname = `/${name}`;
  await sql(admin, `CREATE DATABASE "${name}"`);
  const older = mkdtempSync(path.join(os.tmpdir(), `${prefix}-migrations-`));
  const all = path.join(process.cwd(), "prisma/migrations");
  for (const m of readdirSync(all).filter((d) => /^\d{14}_/.test(d) && d < migration)) cpSync(path.join(all, m), path.join(older, m), { recursive: true });
  await migrate(url.toString(), older);
  return {
    url: url.toString(),
    drop: async () => {
      await sql(admin, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      rmSync(older, { recursive: true, force: true });
    },
  };
}
