import { defineConfig } from "prisma6/config";
import { PrismaPg } from "@prisma/adapter-pg";

// For scripts/db/new-migration.ts only: Prisma 6's CLI diffs two schema files (given on its
// command line) in its WebAssembly schema engine, offline, where Prisma 7's CLI would download
// a native engine. The CLI opens this adapter even for that diff, so the script gives it a server.
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  async adapter() {
    return new PrismaPg({ connectionString: process.env.DATABASE_URL ?? "postgresql://localhost/unused" });
  },
});
