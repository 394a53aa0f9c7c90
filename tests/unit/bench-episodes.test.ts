import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { collectionsIn, episodes, withCollections } from "../../scripts/support/bench-figures";
import { maintenanceIn, withMaintenance } from "../../scripts/support/pg-maintenance";

describe("bench:approvals' tail by episode", () => {
  it("groups slow approvals each returning within 300 ms of the one before, in time order, whatever order they are given in", () => {
    const slow = [
      { at: 7_600, ms: 230.04 }, // the slowest, neither first nor last of its episode
      { at: 7_450, ms: 180 },
      { at: 7_480, ms: 210 },
      { at: 12_000, ms: 104 },
      { at: 7_880, ms: 150 }, // 280 ms after 7,600: same episode
      { at: 8_200, ms: 120 }, // 320 ms after 7,880: a new one
    ];
    expect(episodes(slow)).toEqual([
      { fromSecond: 7.5, atSecond: 7.9, approvals: 4, slowestMs: 230 },
      { fromSecond: 8.2, atSecond: 8.2, approvals: 1, slowestMs: 120 },
      { fromSecond: 12, atSecond: 12, approvals: 1, slowestMs: 104 },
    ]);
  });

  it("keeps calls spread out apart, chains an episode longer than the gap, and has nothing to group when nothing was slow", () => {
    const spread = [0, 1_000, 2_000].map((at) => ({ at, ms: 90 }));
    expect(episodes(spread)).toHaveLength(3);
    expect(episodes(spread, 1_000)).toEqual([{ fromSecond: 0, atSecond: 2, approvals: 3, slowestMs: 90 }]);
    expect(episodes([])).toEqual([]);
  });
});

describe("bench:approvals' episodes beside the web server's garbage collections", () => {
  const startedAt = Date.parse("2026-12-02T15:58:37.400Z");
  const line = (at: number, kind: string, pauseMs: number) => JSON.stringify({ endedAt: startedAt + at, kind, pauseMs });

  it("reads the collections that ended in the phase, as seconds into it in time order, and skips what is not a record", () => {
    const log = [
      line(17_600, "major", 29.8),
      "not json",
      line(-500, "major", 40),
      JSON.stringify({ endedAt: "later", kind: "major", pauseMs: 3 }),
      JSON.stringify({ endedAt: startedAt + 1_000, pauseMs: 3 }),
      line(6_040, "minor", 48.3),
      line(31_000, "major", 20),
      "",
    ].join("\n");
    expect(collectionsIn(log, startedAt, startedAt + 30_000)).toEqual([
      { atSecond: 6, kind: "minor", pauseMs: 48.3 },
      { atSecond: 17.6, kind: "major", pauseMs: 29.8 },
    ]);
    expect(collectionsIn("", startedAt, startedAt + 30_000)).toEqual([]);
  });

  it("sets beside each episode the collection that ended within the second before it began or while it lasted, a major one first, and none otherwise", () => {
    const found = [
      { fromSecond: 0.4, atSecond: 0.6, approvals: 8, slowestMs: 345.1 },
      { fromSecond: 17.7, atSecond: 17.8, approvals: 7, slowestMs: 322.1 },
      { fromSecond: 25, atSecond: 25.4, approvals: 3, slowestMs: 200 },
    ];
    const collections = [
      { atSecond: 17.2, kind: "minor", pauseMs: 62.1 }, // longer, but a major one ended near the same episode
      { atSecond: 17.6, kind: "major", pauseMs: 29.8 },
      { atSecond: 23.9, kind: "minor", pauseMs: 20 }, // 1.1 s before the third episode began: too early to be its cause
    ];
    const at = (list: ReturnType<typeof withCollections>) => list.map((e) => e.collection && `${e.collection.kind} ${e.collection.atSecond}`);
    expect(at(withCollections(found, collections))).toEqual([null, "major 17.6", null]);
    expect(at(withCollections(found, collections, 1.2))).toEqual([null, "major 17.6", "minor 23.9"]);
    // Among others, the longest pause; one that ends during an episode that lasted a while is its own too.
    const long = { fromSecond: 3, atSecond: 4, approvals: 5, slowestMs: 150 };
    const minors = [
      { atSecond: 2.5, kind: "minor", pauseMs: 21 },
      { atSecond: 3.8, kind: "minor", pauseMs: 44 },
    ];
    expect(withCollections([long], minors)[0]!.collection).toEqual({ atSecond: 3.8, kind: "minor", pauseMs: 44 });
    // A second before, to the tenth, is within the window: 8.3 - 1 is more than 7.3 in floating point.
    const edge = { fromSecond: 8.3, atSecond: 8.4, approvals: 4, slowestMs: 190 };
    expect(withCollections([edge], [{ atSecond: 7.3, kind: "major", pauseMs: 20 }])[0]!.collection).toEqual({ atSecond: 7.3, kind: "major", pauseMs: 20 });
  });
});

describe("the preload that records the web server's garbage collections (scripts/support/gc-timeline.cjs)", () => {
  const preload = path.resolve("scripts/support/gc-timeline.cjs");

  it("writes one line for each major collection of a process running server.js, with its kind and when its pause ended, and nothing in any other process", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-gc-timeline-"));
    try {
      const log = path.join(dir, "gc.jsonl");
      for (const name of ["server.js", "latchkey.mjs"]) writeFileSync(path.join(dir, name), "globalThis.gc(); globalThis.gc(); setTimeout(() => {}, 50);\n");
      const run = (name: string) =>
        spawnSync(process.execPath, ["--expose-gc", "--require", preload, path.join(dir, name)], {
          env: { ...process.env, LATCHKEY_BENCH_GC_LOG: log },
          encoding: "utf8",
        });

      const before = Date.now();
      expect(run("latchkey.mjs").status).toBe(0);
      expect(existsSync(log)).toBe(false);
      expect(run("server.js").status).toBe(0);
      const records = readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { endedAt: number; kind: string; pauseMs: number });
      // The two forced major collections; any other kind only when it paused the process 50 ms or more.
      expect(records.filter((r) => r.kind === "major")).toHaveLength(2);
      for (const { endedAt, kind, pauseMs } of records) {
        expect(["major", "minor", "incremental", "weakcb", "other"]).toContain(kind);
        if (kind !== "major") expect(pauseMs).toBeGreaterThanOrEqual(50);
        expect(endedAt).toBeGreaterThanOrEqual(before);
        expect(endedAt).toBeLessThanOrEqual(Date.now());
        expect(pauseMs).toBeGreaterThanOrEqual(0);
      }
      expect(collectionsIn(readFileSync(log, "utf8"), before, Date.now()).filter((c) => c.kind === "major")).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bench:approvals' episodes beside PostgreSQL's autovacuum work", () => {
  const startedAt = Date.parse("2026-12-03T08:34:36.000Z");
  const seen = (look: number, atMs: number, pid: number, work: string, cpuMs: number | null = null, database: string | null = "latchkey_bench") => ({
    at: startedAt + atMs,
    look,
    pid,
    database,
    work,
    cpuMs,
  });

  it("makes one stretch of each worker's sightings at the same work on looks one after another, however far apart, and splits at a look that did not see it", () => {
    const samples = [
      seen(212, 10_500, 41, "VACUUM ANALYZE public.AuditEvent", 1_200),
      seen(207, 10_250, 41, "VACUUM ANALYZE public.AccessRequest", 1_100), // given out of order
      seen(208, 10_400, 41, "VACUUM ANALYZE public.AccessRequest", 1_180),
      // The next look came 900 ms later (the bench's own loop stalled): still one stretch.
      seen(213, 11_400, 41, "VACUUM ANALYZE public.AuditEvent", 1_330),
      // Look 214 did not see it: the same work by the same worker after that is a stretch of its own.
      seen(215, 12_600, 41, "VACUUM ANALYZE public.AuditEvent", 2_090),
      seen(216, 12_700, 41, "VACUUM ANALYZE public.AuditEvent", 2_110),
      seen(216, 12_700, 42, "ANALYZE pg_catalog.pg_type", 500, "postgres"), // another worker, another database, seen once
      seen(217, 12_750, 43, "VACUUM public.Credential", null), // no CPU to read (PostgreSQL on another machine)
      seen(218, 12_800, 43, "VACUUM public.Credential", null),
      seen(1, -900, 44, "VACUUM public.Approval", 10), // within the second before the phase: kept, to be set beside its first episode
      seen(0, -1_100, 44, "VACUUM public.Approval", 0), // before that: left out
      seen(400, 31_000, 45, "VACUUM public.Credential", 10), // after the phase
    ];
    expect(maintenanceIn(samples, startedAt, startedAt + 30_000)).toEqual([
      { fromSecond: -0.9, toSecond: -0.9, database: "latchkey_bench", work: "VACUUM public.Approval", cpuMs: null },
      { fromSecond: 10.3, toSecond: 10.4, database: "latchkey_bench", work: "VACUUM ANALYZE public.AccessRequest", cpuMs: 80 },
      { fromSecond: 10.5, toSecond: 11.4, database: "latchkey_bench", work: "VACUUM ANALYZE public.AuditEvent", cpuMs: 130 },
      { fromSecond: 12.6, toSecond: 12.7, database: "latchkey_bench", work: "VACUUM ANALYZE public.AuditEvent", cpuMs: 20 },
      { fromSecond: 12.7, toSecond: 12.7, database: "postgres", work: "ANALYZE pg_catalog.pg_type", cpuMs: null },
      { fromSecond: 12.8, toSecond: 12.8, database: "latchkey_bench", work: "VACUUM public.Credential", cpuMs: null },
    ]);
    expect(maintenanceIn([], startedAt, startedAt + 30_000)).toEqual([]);
  });

  it("sets beside each episode the work that ran during it or ended within the second before it began, edges included, and nothing else", () => {
    const work = (fromSecond: number, toSecond: number, name: string) => ({ fromSecond, toSecond, database: "latchkey_bench", work: name, cpuMs: 100 });
    const audit = work(10.3, 12.4, "VACUUM ANALYZE public.AuditEvent");
    const credentials = work(9.0, 9.5, "VACUUM ANALYZE public.Credential");
    const early = work(2.0, 2.1, "ANALYZE pg_catalog.pg_type");
    const edge = work(6.9, 7.3, "VACUUM public.Approval");
    const late = work(14.1, 14.9, "VACUUM pgboss.job");
    const found = [
      { fromSecond: 10.5, atSecond: 10.7, approvals: 3, slowestMs: 230 }, // during the audit events' vacuum, 1.0 s after the credentials' ended
      { fromSecond: 13.4, atSecond: 13.6, approvals: 11, slowestMs: 272 }, // 1.0 s after the audit events' vacuum ended
      { fromSecond: 13.5, atSecond: 14.0, approvals: 2, slowestMs: 200 }, // 1.1 s after it, and over before the last work began
      { fromSecond: 3.2, atSecond: 3.2, approvals: 1, slowestMs: 150 }, // 1.1 s after: too long after
      { fromSecond: 8.3, atSecond: 8.4, approvals: 4, slowestMs: 190 }, // 1.0 s after, where 8.3 - 1 is more than 7.3 in floating point
      { fromSecond: 14.9, atSecond: 15.2, approvals: 2, slowestMs: 180 }, // from the moment the last work was last seen
    ];
    expect(withMaintenance(found, [early, edge, credentials, audit, late]).map((e) => e.maintenance)).toEqual([
      [credentials, audit],
      [audit],
      [],
      [],
      [edge],
      [late],
    ]);
  });
});
