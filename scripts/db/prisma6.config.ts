import { defineConfig } from "prisma6/config";
import { PrismaPg } from "@prisma/adapter-pg";

// For scripts/db/new-migration.ts only: Prisma 6's CLI diffs two schema files in its
// WebAssembly schema engine, offline; Prisma 7's CLI would download a native engine.
// The adapter is required by the CLI but never connected for a schema-to-schema diff.
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  async adapter() {
    return new PrismaPg({ connectionString: process.env.DATABASE_URL ?? "postgresql://localhost/unused" });
  },
});
