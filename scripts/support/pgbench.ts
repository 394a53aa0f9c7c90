import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { dropDatabase } from "./prepare-database";

/**
 * PostgreSQL's own write rate on the server a benchmark uses, in the same run: pgbench's
 * built-in TPC-B-like script (five statements in a transaction: three updates, a select and
 * an insert) on a scratch database. Approvals are write transactions on the same server, so
 * their rate divided by this one compares runs on quiet and busy days.
 */
export interface PgbenchSettings {
  /** pgbench's scale factor: 10 makes 1,000,000 accounts (about 150 MB). */
  scale: number;
  clients: number;
  threads: number;
  seconds: number;
}

export interface PgbenchResult {
  tps: number;
  binary: string;
  script: "tpcb-like";
  settings: PgbenchSettings;
}

/** pgbench on the PATH, else in Debian's versioned directory (/usr/lib/postgresql/<version>/bin), newest first. */
export function findPgbench(): string | null {
  const which = spawnSync("which", ["pgbench"], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const candidate = path.join(root, v, "bin/pgbench");
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** Runs pgbench against a scratch database "latchkey_pgbench_<pid>" of the server at `adminUrl` (its own name, so runs in parallel keep apart), dropped afterwards. */
export async function pgbenchTps(binary: string, adminUrl: string, settings: PgbenchSettings): Promise<PgbenchResult> {
  const scratch = new URL(adminUrl);
  const name = `latchkey_pgbench_${process.pid}`;
  scratch.pathname = `/${name}`;
  await dropDatabase(scratch.toString());
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const env = {
    ...process.env,
    PGHOST: scratch.hostname,
    PGPORT: scratch.port || "5432",
    PGUSER: decodeURIComponent(scratch.username || "postgres"),
    PGPASSWORD: decodeURIComponent(scratch.password),
    PGDATABASE: name,
  };
  try {
    execFileSync(binary, ["-i", "-q", "-s", String(settings.scale)], { env, stdio: "ignore" });
    const out = execFileSync(binary, ["-c", String(settings.clients), "-j", String(settings.threads), "-T", String(settings.seconds)], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const tps = Number(out.match(/tps = ([\d.]+)/)?.[1] ?? NaN);
    return { tps: +tps.toFixed(1), binary, script: "tpcb-like", settings };
  } finally {
    await dropDatabase(scratch.toString());
  }
}
