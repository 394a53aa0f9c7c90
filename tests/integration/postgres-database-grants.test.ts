import { randomBytes } from "node:crypto";
import pg from "pg";
import { sql } from "../helpers/database";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { postgresGrants, roleNameFor } from "@/lib/integrations/postgres/database-grants";

/** A real database standing in for a team's production database. */
const admin = inject("pgAdminUrl");
const dbName = `latchkey_target_${randomBytes(5).toString("hex")}`;
const targetUrl = (() => {
  const u = new URL(admin);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const grants = postgresGrants(targetUrl);

beforeAll(async () => {
  await sql(admin, `CREATE DATABASE "${dbName}"`);
  await sql(targetUrl, "CREATE TABLE ledger (id serial PRIMARY KEY, amount int NOT NULL); INSERT INTO ledger (amount) VALUES (10), (20);");
});
afterAll(async () => {
  await sql(admin, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
});

describe("PostgreSQL database grants", () => {
  it("a read grant connects and reads, cannot write, and ends with its open sessions at revocation", async () => {
    const role = roleNameFor(`ck${randomBytes(6).toString("hex")}`);
    const validUntil = new Date(Date.now() + 3600_000);
    const login = await grants.grant({ role, validUntil, schema: "public", privileges: ["SELECT"] });
    expect(login.connectionString).toContain(`${role}:`);
    const [info] = (await sql(admin, "SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = $1", [role])).rows;
    expect(info.rolcanlogin).toBe(true);
    expect(Math.abs(new Date(info.rolvaliduntil).getTime() - validUntil.getTime())).toBeLessThan(1000);

    const session = new pg.Client({ connectionString: login.connectionString });
    await session.connect();
    const ended = new Promise<Error>((resolve) => session.on("error", resolve));
    expect((await session.query("SELECT sum(amount)::int AS total FROM ledger")).rows[0].total).toBe(30);
    await expect(session.query("INSERT INTO ledger (amount) VALUES (1)")).rejects.toThrow(/permission denied/);

    expect(await grants.revoke(role)).toBe("revoked");
    // The session that was open is cut, not left running until it disconnects.
    await expect(session.query("SELECT 1")).rejects.toThrow();
    await ended.catch(() => undefined);
    await session.end().catch(() => undefined);
    const again = new pg.Client({ connectionString: login.connectionString });
    await expect(again.connect()).rejects.toThrow(/role .* does not exist|authentication failed/);
    await again.end().catch(() => undefined);
    expect((await sql(admin, "SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rowCount).toBe(0);
    expect(await grants.revoke(role)).toBe("already-gone");
  });

  it("a write grant can write; granting twice (a retry) reuses the role with a new password", async () => {
    const role = roleNameFor(`ck${randomBytes(6).toString("hex")}`);
    const first = await grants.grant({
      role,
      validUntil: new Date(Date.now() + 600_000),
      schema: "public",
      privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"],
    });
    const second = await grants.grant({
      role,
      validUntil: new Date(Date.now() + 600_000),
      schema: "public",
      privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"],
    });
    expect(second.password).not.toBe(first.password);
    expect((await sql(second.connectionString, "INSERT INTO ledger (amount) VALUES (5) RETURNING amount")).rows[0].amount).toBe(5);
    expect(await grants.revoke(role)).toBe("revoked");
  });

  it("refuses role names Latchkey does not issue, and unknown privileges", async () => {
    await expect(grants.grant({ role: "postgres", validUntil: new Date(), schema: "public", privileges: ["SELECT"] })).rejects.toThrow(/not a role name/);
    await expect(grants.revoke("postgres")).rejects.toThrow(/not a role name/);
    await expect(grants.grant({ role: "lk_x", validUntil: new Date(), schema: "public", privileges: ["TRUNCATE" as never] })).rejects.toThrow(
      /Unknown or missing privileges/,
    );
  });
});
