import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../scripts/support/ports";

/**
 * A PostgreSQL server from the Debian package, the same major version as the installed
 * pg_dump and pg_restore (the embedded server is newer, and pg_dump refuses to dump a newer
 * server). Runs as the `postgres` user when the tests run as root, as PostgreSQL requires.
 */
const run = promisify(execFile);
const BIN = "/usr/lib/postgresql/15/bin";

export async function startDebianPostgres(): Promise<{ adminUrl: string; bin: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-pg15-"));
  chmodSync(dir, 0o755);
  const data = path.join(dir, "data");
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const as = (cmd: string, args: string[]) => (asRoot ? run("runuser", ["-u", "postgres", "--", cmd, ...args]) : run(cmd, args));
  await as(`${BIN}/initdb`, ["-D", data, "--auth=trust", "--username=postgres", "--lc-messages=C", "--locale=C.UTF-8", "--encoding=UTF8"]);
  await as(`${BIN}/pg_ctl`, [
    "-D",
    data,
    "-w",
    "-l",
    path.join(dir, "log"),
    "-o",
    `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off`,
    "start",
  ]);
  return {
    adminUrl: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    bin: BIN,
    stop: async () => {
      await as(`${BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "stop"]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
