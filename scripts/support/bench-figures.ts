import os from "node:os";

/**
 * What every benchmark reports besides its absolute figures. The machine is often shared, so
 * an absolute figure says as much about the day as about the code: each script measures a
 * baseline in the same run (the framework's floor, pgbench, a constant-answer server, a
 * static file) and reports its result as a ratio to it, with targets stated as those ratios
 * and the load average at start and end, to show how busy the machine was.
 */

/**
 * A run-length knob: the command-line flag when given, else the environment variable (so a
 * shorter pass of every script is one variable, e.g. LATCHKEY_BENCH_SECONDS=10), else the default.
 */
export function benchNumber(flag: string | undefined, variable: string, fallback: number): number {
  const given = flag ?? process.env[variable];
  if (given === undefined || given === "") return fallback;
  const value = Number(given);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag === undefined ? variable : "The flag"} must be a positive number, not "${given}"`);
  return value;
}

/** The 1-, 5- and 15-minute load averages, rounded. */
export const loadAverage = () => os.loadavg().map((l) => +l.toFixed(2));

/** `numerator ÷ denominator` to three decimals, or null when the baseline is missing. */
export function ratio(numerator: number, denominator: number | null | undefined, digits = 3): number | null {
  if (denominator === null || denominator === undefined || !Number.isFinite(denominator) || denominator === 0 || !Number.isFinite(numerator)) return null;
  return +(numerator / denominator).toFixed(digits);
}

export interface TargetResult {
  target: string;
  figure: string;
  met: boolean;
}

/** Prints each target as met or not met with the figure that decides it, and returns them for the JSON. */
export function judge(targets: TargetResult[]): TargetResult[] {
  console.log("\ntargets");
  for (const t of targets) console.log(`  ${t.met ? "met    " : "NOT MET"}  ${t.target}: ${t.figure}`);
  return targets;
}

/**
 * The approvals at or above a phase's p99, grouped into episodes: those that returned within
 * `gapMs` (300 ms) of the one before. A few episodes of many approvals each mean the tail came from
 * moments when everything in flight stalled together; many episodes of one or two mean it came
 * from calls queueing one behind another. An episode can last longer than `gapMs` (each approval
 * joins the one before it), so each gives when it began and ended, to tell a moment from a spell.
 */
export function episodes(slow: { at: number; ms: number }[], gapMs = 300): Episode[] {
  const found: (Episode & { last: number })[] = [];
  for (const { at, ms } of [...slow].sort((a, b) => a.at - b.at)) {
    const episode = found.at(-1);
    if (episode && at - episode.last <= gapMs) {
      episode.approvals += 1;
      episode.slowestMs = Math.max(episode.slowestMs, +ms.toFixed(1));
      episode.last = at;
      episode.atSecond = +(at / 1000).toFixed(1);
    } else found.push({ fromSecond: +(at / 1000).toFixed(1), atSecond: +(at / 1000).toFixed(1), approvals: 1, slowestMs: +ms.toFixed(1), last: at });
  }
  return found.map(({ fromSecond, atSecond, approvals, slowestMs }) => ({ fromSecond, atSecond, approvals, slowestMs }));
}

/** When the first and the last approval of an episode returned (seconds into the phase), how many, and the slowest's time. */
export interface Episode {
  fromSecond: number;
  atSecond: number;
  approvals: number;
  slowestMs: number;
}

/** A garbage collection of the web server (a major one, or another that paused it 50 ms or more): its kind, when its pause ended (seconds into the phase) and how long it was. */
export interface Collection {
  atSecond: number;
  kind: string;
  pauseMs: number;
}

/**
 * The collections in a phase, from the lines scripts/support/gc-timeline.cjs wrote (each
 * `{"endedAt": ms since the epoch, "kind": …, "pauseMs": …}`), those ending between `startedAt` and
 * `endedAt` (ms since the epoch), as seconds into the phase. A line that is not such a record is skipped.
 */
export function collectionsIn(log: string, startedAt: number, endedAt: number): Collection[] {
  const found: Collection[] = [];
  for (const line of log.split("\n")) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      continue;
    }
    const { endedAt: at, kind, pauseMs } = (record ?? {}) as { endedAt?: unknown; kind?: unknown; pauseMs?: unknown };
    if (typeof at !== "number" || typeof kind !== "string" || typeof pauseMs !== "number" || at < startedAt || at > endedAt) continue;
    found.push({ atSecond: +((at - startedAt) / 1000).toFixed(1), kind, pauseMs });
  }
  return found.sort((a, b) => a.atSecond - b.atSecond);
}

/**
 * Whether something that went on from `fromSecond` to `toSecond` of a phase falls beside an
 * episode: during it, or ending within `beforeSeconds` before it began. Compared in whole tenths
 * of a second, as the figures are given, so that an edge does not depend on float rounding
 * (8.3 - 1 is more than 7.3 in floating point).
 */
export function besideEpisode(episode: Episode, fromSecond: number, toSecond: number, beforeSeconds = 1): boolean {
  const tenths = (seconds: number) => Math.round(seconds * 10);
  return tenths(toSecond) >= tenths(episode.fromSecond) - tenths(beforeSeconds) && tenths(fromSecond) <= tenths(episode.atSecond);
}

/**
 * Each episode with the collection that ended within `beforeSeconds` (1 s) before its first slow
 * approval returned, or while it lasted: a major one if any did, else the one with the longest
 * pause, else null. A major collection marks the heap for a few hundred milliseconds on V8's
 * helper threads before its pause, on the cores the portal shares, and every call in flight
 * waits through it and returns right after, which is an episode's shape; an episode with no
 * collection beside it came from something else.
 */
export function withCollections(found: Episode[], collections: Collection[], beforeSeconds = 1): Array<Episode & { collection: Collection | null }> {
  return found.map((episode) => {
    const near = collections.filter((c) => besideEpisode(episode, c.atSecond, c.atSecond, beforeSeconds));
    const chosen = near.find((c) => c.kind === "major") ?? [...near].sort((a, b) => b.pauseMs - a.pauseMs)[0] ?? null;
    return { ...episode, collection: chosen };
  });
}
