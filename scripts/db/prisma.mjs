// Runs a Prisma CLI fully offline: Prisma 7's for `prisma generate`, or, with --prisma6 first,
// Prisma 6.19's (the npm alias prisma6) for `migrate diff` in its WebAssembly schema engine
// (scripts/db/new-migration.ts). Nothing native is needed, but both CLIs look for the Rust
// engines unless these variables point at a file that exists; they are never executed.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const placeholder = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const v6 = args[0] === "--prisma6";
const cli = fileURLToPath(new URL(`../../node_modules/${v6 ? "prisma6" : "prisma"}/build/index.js`, import.meta.url));
const result = spawnSync(process.execPath, [cli, ...(v6 ? args.slice(1) : args)], {
  stdio: "inherit",
  env: {
    PRISMA_SCHEMA_ENGINE_BINARY: placeholder,
    PRISMA_QUERY_ENGINE_LIBRARY: placeholder,
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    CHECKPOINT_DISABLE: "1",
    ...process.env,
  },
});
process.exit(result.status ?? 1);
