import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

// Prisma's CLI is used offline for two things only: `prisma generate` and
// `prisma migrate diff` between two schema files, which runs in the bundled
// WebAssembly schema engine ("js") and never connects to the adapter below.
// Migrations are applied by lib/db/migrate.ts: see the README, "Database".
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  async adapter() {
    return new PrismaPg({ connectionString: process.env.DATABASE_URL ?? "postgresql://localhost/unused" });
  },
});
