import { spawn } from "node:child_process";
import PgBoss from "pg-boss";

/**
 * Latchkey's worker in a process of its own, started as instrumentation.ts starts it, with
 * only the configuration a test gives it (so it can hold another encryption key ring than
 * the test process). `sweepNow` sends the job the worker's minute schedule sends, and waits
 * until the worker has run it: what the worker does each minute, without waiting a minute.
 */
export interface WorkerProcess {
  /** Everything the worker printed so far. */
  output(): string;
  /** SIGTERM; SIGKILL if it is not gone within 10 seconds. */
  stop(): Promise<void>;
}

const START =
  "import('./lib/jobs/worker.ts').then((m) => m.startWorker(process.env.DATABASE_URL, { pollingIntervalSeconds: 0.5 })).then(() => console.log('worker ready'), (e) => { console.error(e.message); process.exit(1); })";

/** Configuration the worker validates at start but these tests do not exercise. */
const UNUSED = {
  NEXTAUTH_URL: "http://localhost:3999",
  NEXTAUTH_SECRET: "x".repeat(32),
  OIDC_ISSUER: "http://unused.invalid",
  OIDC_CLIENT_ID: "unused",
  OIDC_CLIENT_SECRET: "unused",
};

export async function startWorkerProcess(env: Record<string, string | undefined>): Promise<WorkerProcess> {
  const only = { PATH: process.env.PATH, LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE, ...UNUSED, ...env };
  const child = spawn("node_modules/.bin/tsx", ["--conditions=react-server", "--eval", START], {
    env: Object.fromEntries(Object.entries(only).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("worker ready")) resolve();
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`the worker exited (${code}) before it was ready:\n${output.slice(-3000)}`)));
    setTimeout(() => reject(new Error(`the worker was not ready within 90 s:\n${output.slice(-3000)}`)), 90_000).unref();
  });
  return {
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Sends the worker's every-minute sweep job now and waits until a worker has completed it. */
export async function sweepNow(databaseUrl: string, timeoutMs = 60_000): Promise<void> {
  const { QUEUES } = await import("@/lib/jobs/queue");
  const boss = new PgBoss({ connectionString: databaseUrl, schema: "pgboss", supervise: false, schedule: false, migrate: false, max: 1 });
  boss.on("error", () => undefined);
  await boss.start();
  try {
    const id = await boss.send(QUEUES.sweepExpired, {});
    if (!id) throw new Error("pg-boss did not take the sweep job");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await boss.getJobById(QUEUES.sweepExpired, id);
      if (job?.state === "completed") return;
      if (job?.state === "failed") throw new Error(`the sweep failed: ${JSON.stringify(job.output)}`);
      if (Date.now() > deadline) throw new Error(`the sweep job is still ${job?.state} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}
