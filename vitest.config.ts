import path from "node:path";
import { defineConfig } from "vitest/config";

const root = path.dirname(new URL(import.meta.url).pathname);
const resolve = {
  alias: {
    "@": root,
    // `server-only` throws outside React Server Components; lib code is server code anyway.
    "server-only": path.join(root, "tests/helpers/server-only.ts"),
  },
};

/**
 * Integration files that judge the product by how long something took, and so run alone, after
 * the others: the pool asks a read again after a lost connection or a stale prepared statement
 * only when it failed at once (within 250 ms), which three files at once on two cores exceeded.
 */
const ALONE = ["tests/integration/db-lost-connection.test.ts", "tests/integration/prepared-statements.test.ts"];

/** What both integration projects share: a PostgreSQL server for the run, and room for real peers to start. */
const INTEGRATION = { globalSetup: ["tests/helpers/postgres-global-setup.ts"], testTimeout: 60_000, hookTimeout: 120_000 };

export default defineConfig({
  resolve,
  test: {
    // Vitest runs one file at a time on a two-core machine (cores − 1). Unit and integration files spend much
    // of their time waiting on PostgreSQL, proxies and child processes, each on databases of their own, so two
    // run at once; the end-to-end files still run alone, one after another, once those are done (singleFork).
    maxWorkers: 2,
    projects: [
      // The lint-rule tests build ESLint's TypeScript program on their first case: seconds, more beside other files.
      { resolve, test: { name: "unit", include: ["tests/unit/**/*.test.ts"], environment: "node", testTimeout: 30_000 } },
      {
        resolve,
        // Some integration tests render components on the server, as Next.js does (React's automatic JSX runtime).
        esbuild: { jsx: "automatic" },
        test: { ...INTEGRATION, name: "integration", include: ["tests/integration/**/*.test.ts"], exclude: ALONE },
      },
      { resolve, test: { ...INTEGRATION, name: "integration-alone", include: ALONE, poolOptions: { forks: { singleFork: true } } } },
      {
        resolve,
        test: {
          name: "e2e",
          include: ["tests/e2e/**/*.test.ts"],
          globalSetup: ["tests/helpers/postgres-global-setup.ts", "tests/helpers/portal-global-setup.ts"],
          // One file at a time: two whole portals beside a browser on two cores made the browser's timing flaky.
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
