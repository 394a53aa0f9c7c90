import { readdirSync, readFileSync } from "node:fs";

/**
 * Where a benchmark's CPU goes: the CPU time of each process that serves it, by role, read
 * from Linux's /proc (each thread's schedstat, in nanoseconds: exact, where the stat file's
 * clock ticks are too coarse for a few milliseconds a call). The portal's processes are found
 * by its process group (scripts/support/bench-portal.ts starts it detached): Next.js's server
 * (it names its process "next-server") and the entry process, which runs the worker. PostgreSQL
 * counts only when it is this process's child (the embedded server), not DATABASE_URL's: its
 * backends come and go, so the time of those that ended is read from the postmaster's count of
 * its children's time. Elsewhere than Linux every figure is null.
 */
export type Role = "web" | "worker" | "postgres" | "client";
type Reading = { perProcess: Map<number, number>; ended: number } | null;
export type CpuSnapshot = Record<Role, Reading>;
export type CpuByRole = Record<Role, number | null>;

interface Proc {
  pid: number;
  ppid: number;
  group: number;
  name: string;
  /** Time of its children that ended (ms; the stat file counts it in clock ticks, 100 a second on Linux). */
  children: number;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.push({ pid: Number(entry), ppid: Number(fields[1]), group: Number(fields[2]), name, children: (Number(fields[13]) + Number(fields[14])) * 10 });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return out;
}

/** CPU milliseconds a process has used so far, all its threads together; null once it is gone. */
function cpuMs(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/task`).reduce(
      (sum, task) => sum + Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]) / 1e6,
      0,
    );
  } catch {
    return null;
  }
}

function reading(ps: Proc[], ended = 0): Reading {
  if (ps.length === 0) return null;
  const perProcess = new Map<number, number>();
  for (const p of ps) {
    const ms = cpuMs(p.pid);
    if (ms !== null) perProcess.set(p.pid, ms);
  }
  return { perProcess, ended };
}

/** The CPU time used so far by each role's processes, for a portal started in process group `portalGroup`. */
export function cpuSnapshot(portalGroup: number | undefined): CpuSnapshot {
  if (process.platform !== "linux" || portalGroup === undefined) return { web: null, worker: null, postgres: null, client: null };
  const all = processes();
  const portal = all.filter((p) => p.group === portalGroup);
  const web = portal.filter((p) => p.name.startsWith("next-server"));
  // The entry process: the portal's process that Next.js's server is a child of.
  const worker = portal.filter((p) => web.some((w) => w.ppid === p.pid));
  const postmasters = all.filter((p) => p.name === "postgres" && p.ppid === process.pid);
  const postgres = all.filter((p) => p.name === "postgres" && postmasters.some((m) => m.pid === p.pid || m.pid === p.ppid));
  return {
    web: reading(web),
    worker: reading(worker),
    postgres: reading(
      postgres,
      postmasters.reduce((sum, m) => sum + m.children, 0),
    ),
    client: reading(all.filter((p) => p.pid === process.pid)),
  };
}

/**
 * Each role's CPU milliseconds between two snapshots, per unit of work (an approval, a pair of
 * calls), to 0.01 ms: the processes alive at the end, less what each had used at the start, and
 * the processes that ended meanwhile (their whole time, as their parent counts it, less what
 * the first snapshot had already counted of it).
 */
export function cpuPer(before: CpuSnapshot, after: CpuSnapshot, units: number): CpuByRole {
  const per = (role: Role) => {
    const [a, b] = [before[role], after[role]];
    if (a === null || b === null || units <= 0) return null;
    let ms = b.ended - a.ended;
    for (const [pid, now] of b.perProcess) ms += now - (a.perProcess.get(pid) ?? 0);
    for (const [pid, then] of a.perProcess) if (!b.perProcess.has(pid)) ms -= then;
    return +(ms / units).toFixed(2);
  };
  return { web: per("web"), worker: per("worker"), postgres: per("postgres"), client: per("client") };
}
