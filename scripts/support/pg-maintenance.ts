import { readFileSync } from "node:fs";
import pg from "pg";
import { besideEpisode, type Episode } from "./bench-figures";
import { cpuMsOf } from "./process-cpu";

/**
 * PostgreSQL's own maintenance during a benchmark's phases: its autovacuum workers, seen by
 * asking pg_stat_activity every 50 ms, with the CPU each took while it was seen (from Linux's
 * /proc, when the worker is a process of this machine; null elsewhere). A benchmark's database
 * starts empty and fills at hundreds of rows a second, so autovacuum comes back to its tables
 * about once a minute (autovacuum_naptime), and a worker vacuuming and analyzing the audit
 * events takes a core's share for seconds on the machine that serves the portal: bench:approvals
 * sets each slow episode beside the work that ran during it or ended in the second before, as it
 * does with the web server's garbage collections. PostgreSQL keeps no history of when
 * autovacuum ran (pg_stat_user_tables keeps only the last end), hence the sampling; a worker
 * busy for less than 50 ms can be missed, and a look that failed is counted, so that "none
 * seen" is never said of a phase that was not watched.
 */

/** One autovacuum worker seen at one look. */
export interface MaintenanceSample {
  /** Date.now() when it was seen. */
  at: number;
  /** The look it was seen at, counted from 1 (looks that failed not counted). */
  look: number;
  pid: number;
  database: string | null;
  /** What it was doing: "VACUUM ANALYZE public.AuditEvent", "ANALYZE pg_catalog.pg_type". */
  work: string;
  /** Its CPU time so far, in ms (/proc), or null where that cannot be read. */
  cpuMs: number | null;
}

/** One stretch of work by one worker, as seconds into the phase. */
export interface Maintenance {
  fromSecond: number;
  toSecond: number;
  database: string | null;
  work: string;
  /** CPU taken between its first and last sighting, in ms; null where it cannot be read or it was seen once. */
  cpuMs: number | null;
}

/** The worker's CPU time so far, if `pid` is an autovacuum worker of this machine (with PostgreSQL elsewhere, it is another process's pid or none). */
function cpuOf(pid: number): number | null {
  try {
    // "postgres: autovacuum worker <database>", or with the server's cluster_name after "postgres: ".
    const title = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (!title.startsWith("postgres: ") || !title.includes("autovacuum worker")) return null;
  } catch {
    return null;
  }
  return cpuMsOf(pid);
}

/**
 * Groups samples into stretches of work: the same worker at the same work, seen at one look
 * after another (a stretch ends at the first look that did not see it, however long the looks
 * were apart). Samples from a second before `startedAt` to `endedAt` count, so that work which
 * ended just before the phase is there to be set beside its first episode; the result is in
 * order of start.
 */
export function maintenanceIn(samples: MaintenanceSample[], startedAt: number, endedAt: number): Maintenance[] {
  const open = new Map<string, { first: MaintenanceSample; last: MaintenanceSample }>();
  const done: Array<{ first: MaintenanceSample; last: MaintenanceSample }> = [];
  for (const sample of [...samples].sort((a, b) => a.look - b.look)) {
    if (sample.at < startedAt - 1000 || sample.at > endedAt) continue;
    const key = `${sample.pid} ${sample.database} ${sample.work}`;
    const stretch = open.get(key);
    if (stretch && sample.look === stretch.last.look + 1) stretch.last = sample;
    else {
      if (stretch) done.push(stretch);
      open.set(key, { first: sample, last: sample });
    }
  }
  done.push(...open.values());
  const second = (at: number) => +((at - startedAt) / 1000).toFixed(1);
  return done
    .sort((a, b) => a.first.at - b.first.at)
    .map(({ first, last }) => ({
      fromSecond: second(first.at),
      toSecond: second(last.at),
      database: first.database,
      work: first.work,
      cpuMs: first === last || first.cpuMs === null || last.cpuMs === null ? null : last.cpuMs - first.cpuMs,
    }));
}

/** Each episode with the maintenance that ran during it or ended within `beforeSeconds` before it began. */
export function withMaintenance<E extends Episode>(found: E[], maintenance: Maintenance[], beforeSeconds = 1): Array<E & { maintenance: Maintenance[] }> {
  return found.map((episode) => ({
    ...episode,
    maintenance: maintenance.filter((m) => besideEpisode(episode, m.fromSecond, m.toSecond, beforeSeconds)),
  }));
}

/** Starts asking the server at `adminUrl` for its autovacuum workers every `everyMs`; stop() ends it. */
export async function watchMaintenance(adminUrl: string, everyMs = 50) {
  const client = new pg.Client({ connectionString: adminUrl });
  const samples: MaintenanceSample[] = [];
  let looks = 0;
  let failures = 0;
  let stopped = false;
  let busy = false;
  let running: Promise<unknown> = Promise.resolve();
  // A lost connection fails the looks after it (counted), not the benchmark.
  client.on("error", () => undefined);
  await client.connect();
  const look = async () => {
    const at = Date.now();
    const { rows } = await client.query<{ pid: number; datname: string | null; query: string }>(
      `SELECT pid, datname, query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query <> ''`,
    );
    looks += 1;
    for (const row of rows)
      samples.push({ at, look: looks, pid: row.pid, database: row.datname, work: row.query.replace(/^autovacuum:\s*/, ""), cpuMs: cpuOf(row.pid) });
  };
  const timer = setInterval(() => {
    // A look still waiting for its answer is not doubled: samples stay one a moment.
    if (stopped || busy) return;
    busy = true;
    running = look()
      .catch(() => (failures += 1))
      .finally(() => (busy = false));
  }, everyMs);
  return {
    samples: () => samples,
    /** Looks answered and looks that failed so far. */
    counts: () => ({ looks, failures }),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await client.end().catch(() => undefined);
    },
  };
}

/** "VACUUM ANALYZE public.AuditEvent 10.4 to 12.5 s (890 ms CPU)". */
export const maintenanceLine = (m: Maintenance) => `${m.work} ${m.fromSecond} to ${m.toSecond} s${m.cpuMs === null ? "" : ` (${m.cpuMs} ms CPU)`}`;
