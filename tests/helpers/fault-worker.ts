/**
 * A worker in a process of its own, for the fault tests to kill: it registers a workflow
 * whose outside system is a table of the test database (slow, idempotent by request id,
 * like a real one) and runs Latchkey's worker. Argument: the database URL; the rest of the
 * configuration comes from the environment the test passes.
 */
import { faultWorkflow } from "./fault-workflow";

const databaseUrl = process.argv[2]!;
const { registerWorkflow } = await import("../../lib/workflows/registry");
const { db } = await import("../../lib/db");
registerWorkflow(
  faultWorkflow({
    async perform({ request }) {
      await db.$executeRaw`INSERT INTO outside_calls (request_id, kind) VALUES (${request.id}, 'perform-started')`;
      await new Promise((r) => setTimeout(r, Number(process.env.FAULT_PERFORM_MS ?? 3000)));
      // Idempotent by request id, as real outside systems are (a map entry, a role, a run id).
      await db.$executeRaw`INSERT INTO outside_calls (request_id, kind) SELECT ${request.id}, 'applied' WHERE NOT EXISTS (SELECT 1 FROM outside_calls WHERE request_id = ${request.id} AND kind = 'applied')`;
      return { audit: { opened: request.id } };
    },
    async undo() {},
  }),
);
const { startWorker } = await import("../../lib/jobs/worker");
await startWorker(databaseUrl, { pollingIntervalSeconds: 0.5 });
process.stdout.write("worker ready\n");
