import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const dir = path.join(process.cwd(), "prisma/migrations");

describe("migrations", () => {
  it("the last migration was generated from the current schema (no change left un-migrated)", () => {
    const last = readdirSync(dir).sort().at(-1)!;
    expect(readFileSync(path.join(dir, last, "schema.prisma"), "utf8")).toBe(readFileSync("prisma/schema.prisma", "utf8"));
  });
  it("every migration has its SQL and a schema snapshot", () => {
    for (const name of readdirSync(dir)) {
      expect(name).toMatch(/^\d{14}_[a-z0-9_]+$/);
      expect(readFileSync(path.join(dir, name, "migration.sql"), "utf8")).toMatch(/CREATE|ALTER|DROP/);
      expect(readFileSync(path.join(dir, name, "schema.prisma"), "utf8")).toContain("generator client");
    }
  });
});
