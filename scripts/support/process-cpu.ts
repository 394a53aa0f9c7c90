import { readdirSync, readFileSync } from "node:fs";

/**
 * Where a benchmark's CPU goes: the CPU time of each process that serves it, by role, read
 * from Linux's /proc (user and system time of the whole process, threads that ended included,
 * in clock ticks of 10 ms: fine against phases of seconds). The portal's processes are found
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
  /** Its own CPU time so far, all threads, in ms. */
  cpu: number;
  /** Time of its children that ended, in ms. */
  children: number;
}

const TICK_MS = 10;

/** The fields of /proc/<pid>/stat after the process's name, and the name; null once the process is gone. */
function stat(pid: string | number): { name: string; f: string[] } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return { name: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")), f: text.slice(text.lastIndexOf(")") + 2).split(" ") };
  } catch {
    return null;
  }
}

/** After the name: state, ppid, pgrp, ..., utime (the 12th), stime, cutime, cstime. */
const ownCpu = (f: string[]) => (Number(f[11]) + Number(f[12])) * TICK_MS;

/** One process's own CPU time so far (all threads), in ms; null once it is gone or elsewhere than Linux. */
export function cpuMsOf(pid: number): number | null {
  const s = stat(pid);
  return s ? ownCpu(s.f) : null;
}
const endedChildrenCpu = (f: string[]) => (Number(f[13]) + Number(f[14])) * TICK_MS;

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(entry);
    if (s) out.push({ pid: Number(entry), ppid: Number(s.f[1]), group: Number(s.f[2]), name: s.name, cpu: ownCpu(s.f), children: endedChildrenCpu(s.f) });
  }
  return out;
}

function reading(ps: Proc[], ended = 0): Reading {
  return ps.length === 0 ? null : { perProcess: new Map(ps.map((p) => [p.pid, p.cpu])), ended };
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
  // The postmaster's count of its ended children, read again after its backends were: a backend that ends in
  // between is counted rather than lost (the little it had used by the first reading may count twice).
  const ended = postmasters.reduce((sum, m) => {
    const again = stat(m.pid);
    return sum + (again ? endedChildrenCpu(again.f) : m.children);
  }, 0);
  return {
    web: reading(web),
    worker: reading(worker),
    postgres: reading(postgres, ended),
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

/** The web server's main thread's times so far: on a CPU, and runnable but waiting for one (ms), read at `atMs` (performance.now()). */
export interface ThreadTimes {
  atMs: number;
  onCpuMs: number;
  waitingMs: number;
}

/** Between two readings of the main thread: its time on a CPU per unit of work (ms), and the shares of the time between them it spent on a CPU and waiting for one. */
export interface ThreadUse {
  onCpuMsPer: number;
  onCpuShare: number;
  waitingShare: number;
}

/**
 * The web server's main thread, where Next.js runs every request's JavaScript: how long it has
 * been on a CPU and how long it has waited, runnable, for one (Linux's
 * /proc/<pid>/task/<pid>/schedstat, in ns; the thread whose id is the process's). Flat out this
 * one thread is what the web server can do, so its CPU time per approval is the code's cost
 * where the limit is, which the machine's scheduling leaves alone, and its wait is what the
 * other processes on the same cores took from it. Null elsewhere than Linux, without schedstat,
 * or when the server is not found.
 */
export function webMainThread(portalGroup: number | undefined): ThreadTimes | null {
  if (process.platform !== "linux" || portalGroup === undefined) return null;
  const web = processes().find((p) => p.group === portalGroup && p.name.startsWith("next-server"));
  if (!web) return null;
  try {
    const [onCpu = NaN, waiting = NaN] = readFileSync(`/proc/${web.pid}/task/${web.pid}/schedstat`, "utf8").split(" ").map(Number);
    if (!Number.isFinite(onCpu) || !Number.isFinite(waiting)) return null;
    return { atMs: performance.now(), onCpuMs: onCpu / 1e6, waitingMs: waiting / 1e6 };
  } catch {
    return null;
  }
}

/** The main thread's use between two readings, `units` of work done in between; null without both readings or any work. */
export function threadUse(before: ThreadTimes | null, after: ThreadTimes | null, units: number): ThreadUse | null {
  if (!before || !after || units <= 0 || after.atMs <= before.atMs) return null;
  const wall = after.atMs - before.atMs;
  return {
    onCpuMsPer: +((after.onCpuMs - before.onCpuMs) / units).toFixed(2),
    onCpuShare: +((after.onCpuMs - before.onCpuMs) / wall).toFixed(2),
    waitingShare: +((after.waitingMs - before.waitingMs) / wall).toFixed(2),
  };
}
