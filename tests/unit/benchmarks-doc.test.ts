import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { namedPaths } from "../helpers/named-paths";
import { needsBuild } from "../../scripts/support/bench-portal";

// The README's "Benchmarks" table is what a reader takes for the product's speed, and docs/BENCHMARKS.md for how it was
// measured. These checks keep the two honest: every bench script has a row and a section, each figure the table prints in
// bold is the committed run's (bench/*.json, the run the table says it shows), and the paths both name exist.
const root = process.cwd();
const readme = readFileSync(path.join(root, "README.md"), "utf8");
const benchmarksDoc = readFileSync(path.join(root, "docs/BENCHMARKS.md"), "utf8");
const section = readme.slice(readme.indexOf("## Benchmarks"), readme.indexOf("\n## ", readme.indexOf("## Benchmarks") + 1));
const scripts = Object.keys((JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts).filter((name) =>
  name.startsWith("bench:"),
);

/** The README table's one row for `npm run <script>`, split into its cells. */
function row(script: string): string[] {
  const lines = section.split("\n").filter((l) => l.startsWith(`| \`npm run ${script}\` |`));
  if (lines.length !== 1) throw new Error(`README's Benchmarks table has ${lines.length} rows for npm run ${script}, not one`);
  return lines[0]!.split(" | ").map((cell) => cell.replace(/^\| | \|$/g, ""));
}

/** The figures a cell prints in bold, as numbers (`**0.282**` → 0.282), in order. */
function boldFigures(cell: string): number[] {
  return [...cell.matchAll(/\*\*([0-9][0-9,.]*)\*\*/g)].map((m) => Number(m[1]!.replace(/,/g, "")));
}

/** Checks that `cell` prints each figure in bold right after its label, and no other bold figure. */
function expectLabelled(cell: string, figures: Array<[label: string, value: number]>): void {
  for (const [label, value] of figures) expect(cell).toContain(`${label} **${value}**`);
  expect(boldFigures(cell)).toEqual(figures.map(([, value]) => value));
}

/** The rows of docs/BENCHMARKS.md's table of the floor's tail ("2026-12-03 (evening)"), the first figure of each cell as a number (NaN for "—", not measured). */
function floorTailRuns(): Array<{ run: string; script: string; overFloor: number; tail: number; floorTail: number; shares: number[]; half: number; floorHalf: number }> {
  const header =
    "| run (UTC) | script | approvals ÷ floor | tail at ¾ | the floor's tail at ¾ | share of flat out reached at ¾ (approvals; floor) | tail at ½ | the floor's tail at ½ |";
  const start = benchmarksDoc.indexOf(header);
  if (start < 0) throw new Error(`docs/BENCHMARKS.md has no table headed ${header}`);
  const lines = benchmarksDoc.slice(start).split("\n");
  const end = lines.findIndex((line, i) => i > 1 && !line.startsWith("| "));
  const first = (cell: string) => Number(cell.replace(/\*\*/g, "").match(/[0-9][0-9.]*/)?.[0] ?? Number.NaN);
  return lines.slice(2, end < 0 ? undefined : end).map((line) => {
    const cells = line.split(" | ").map((cell) => cell.replace(/^\| | \|$/g, ""));
    return {
      run: cells[0]!,
      script: cells[1]!,
      overFloor: first(cells[2]!),
      tail: first(cells[3]!),
      floorTail: first(cells[4]!),
      shares: cells[5]!.split("; ").map(first),
      half: first(cells[6]!),
      floorHalf: first(cells[7]!),
    };
  });
}

function bench<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(root, `bench/${name}.json`), "utf8")) as T;
}

describe("the README's Benchmarks and docs/BENCHMARKS.md", () => {
  it("give every bench script a row in the README's table and a section in docs/BENCHMARKS.md", () => {
    expect(scripts.length).toBeGreaterThanOrEqual(6);
    for (const script of scripts) {
      expect(row(script)).toHaveLength(5);
      expect(benchmarksDoc).toContain(`\n## \`npm run ${script}\`\n`);
    }
    expect(section).toContain("[docs/BENCHMARKS.md](docs/BENCHMARKS.md)");
  });

  it("print in bold, each beside its label, the ratios of the committed runs in bench/*.json", () => {
    const history = bench<{ spread: { slowestOverMedianP95: number }; export: { exportOverCopy: number } }>("history");
    expectLabelled(row("bench:history")[2]!, [
      ["slowest query's p95 ÷ median query's p95", history.spread.slowestOverMedianP95],
      ["export ÷ `COPY`", history.export.exportOverCopy],
    ]);

    const pages = bench<{ ratios: Record<string, { p50OverFloorP50: number }> }>("pages");
    expectLabelled(
      row("bench:pages")[2]!,
      ["catalog", "approvals", "history"].map((page) => [page, pages.ratios[`/${page}`]!.p50OverFloorP50]),
    );

    const approvals = bench<{
      ratios: {
        approvalsOverFloor: number;
        pacedP99OverOneAtATimeP99: number;
        floorPacedP99OverOneAtATimeP99: number;
        pacedAtHalfP99OverOneAtATimeP99: number;
        floorPacedAtHalfP99OverOneAtATimeP99: number;
      };
    }>("approvals");
    expectLabelled(row("bench:approvals")[2]!, [
      ["flat-out approvals ÷ floor", approvals.ratios.approvalsOverFloor],
      ["paced p99 ÷ one-at-a-time p99", approvals.ratios.pacedP99OverOneAtATimeP99],
      ["the floor's own paced p99 ÷ one-at-a-time p99", approvals.ratios.floorPacedP99OverOneAtATimeP99],
      ["at half the flat-out rate, paced p99 ÷ one-at-a-time p99", approvals.ratios.pacedAtHalfP99OverOneAtATimeP99],
      ["the floor's at half", approvals.ratios.floorPacedAtHalfP99OverOneAtATimeP99],
    ]);

    type Kind = { leanOverNodeConstant: number; pacedP99LeanOverNodeConstant: number };
    const authz = bench<{ ratios: { forwardAuth: Kind; introspection: Kind } }>("authz");
    const [flatOut, paced] = row("bench:authz")[2]!.split("paced p99");
    expectLabelled(flatOut!, [
      ["forward-auth", authz.ratios.forwardAuth.leanOverNodeConstant],
      ["introspection", authz.ratios.introspection.leanOverNodeConstant],
    ]);
    expectLabelled(paced!, [
      ["forward-auth", authz.ratios.forwardAuth.pacedP99LeanOverNodeConstant],
      ["introspection", authz.ratios.introspection.pacedP99LeanOverNodeConstant],
    ]);
  });

  it("say whether each approvals target was met as the committed run's JSON does, and claim no errors the runs had", () => {
    const approvals = bench<{
      targets: Array<{ target: string; met: boolean }>;
      errors: number;
      doubleExecutions: number;
      ratios: { floorPacedP99OverOneAtATimeP99: number };
      paced: { approvalToCredentialMs: { p95: number } };
      approvalToCredentialOneAtATimeMs: { p99: number };
    }>("approvals");
    const met = (words: string) => approvals.targets.find((t) => t.target.includes(words))!.met;
    // The target cell's order: the floor, the tail, then errors and double executions together.
    const expected = [met("framework floor"), met("one-at-a-time p99"), met("0 errors") && met("0 double executions")];
    expect(row("bench:approvals")[4]!.split(". ")[0]!.split(", ")).toEqual(expected.map((m) => (m ? "met" : "not met")));
    expect(row("bench:approvals")[2]).toContain("0 errors, 0 double executions");
    expect([approvals.errors, approvals.doubleExecutions]).toEqual([0, 0]);
    // "The framework misses the tail target too": true of the committed run's floor, or the sentence must go.
    expect(section).toContain("*The framework misses the tail target too.*");
    expect(approvals.ratios.floorPacedP99OverOneAtATimeP99).toBeGreaterThan(3);
    // "Without those moments the tail would be close to the target": the committed run's paced p95 against three times its one-at-a-time p99.
    const { p95 } = approvals.paced.approvalToCredentialMs;
    const { p99 } = approvals.approvalToCredentialOneAtATimeMs;
    expect(section.replace(/\s+/g, " ")).toContain(
      `the paced p95 was ${p95.toFixed(1)} ms against ${(3 * p99).toFixed(1)} ms (three times the one-at-a-time p99 of ${p99.toFixed(1)} ms) in the run above`,
    );

    const authz = bench<{ errors: number }>("authz");
    expect(row("bench:authz")[2]).toContain("0 errors");
    expect(authz.errors).toBe(0);
  });

  it("give the floor's tail as the runs in docs/BENCHMARKS.md measured it: the last run is the committed one, and the README's ranges and counts are the table's", () => {
    const runs = floorTailRuns();
    const last = runs.at(-1)!;
    const committed = bench<{
      ratios: { approvalsOverFloor: number; pacedP99OverOneAtATimeP99: number; floorPacedP99OverOneAtATimeP99: number };
      loadShares: { paced: number; floorPaced: number };
    }>("approvals");
    expect(last).toMatchObject({
      overFloor: committed.ratios.approvalsOverFloor,
      tail: committed.ratios.pacedP99OverOneAtATimeP99,
      floorTail: committed.ratios.floorPacedP99OverOneAtATimeP99,
      shares: [committed.loadShares.paced, committed.loadShares.floorPaced],
    });
    // The README speaks of the runs of the script as committed: the table's rows with the last row's script.
    const ofScript = runs.filter((r) => r.script === last.script);
    const range = (values: number[]) => `${Math.min(...values)} to ${Math.max(...values)}`;
    const within = (values: number[]) => values.filter((v) => v <= 3).length;
    const from = section.indexOf("*The framework misses the tail target too.*");
    const bullet = section.slice(from, section.indexOf("\n- *", from)).replace(/\s+/g, " ");
    for (const claim of [
      `In the ${ofScript.length} runs of the script as committed (${last.script})`,
      `had a paced p99 ${range(ofScript.map((r) => r.floorTail))} times their one-at-a-time p99`,
      `the approvals' tail was ${range(ofScript.map((r) => r.tail))}, below the floor's in ${ofScript.filter((r) => r.tail < r.floorTail).length}`,
      `they reached ${range(ofScript.flatMap((r) => r.shares))} of their flat-out rates`,
      `the approvals' tail met the target in ${within(ofScript.map((r) => r.half))} of the ${ofScript.length} runs (${range(ofScript.map((r) => r.half))}), the floor's in ${within(ofScript.map((r) => r.floorHalf))} (${range(ofScript.map((r) => r.floorHalf))})`,
    ])
      expect(bullet, "the README's bullet on the floor's tail against docs/BENCHMARKS.md's table").toContain(claim);
    // And the approvals row's "met" cell, of every run in the table.
    expect(row("bench:approvals")[4], "the approvals row's count and range of the floor's tails").toContain(
      `The floor's own tail was above 3 in all ${runs.length} runs of the evening's table in docs/BENCHMARKS.md (${range(runs.map((r) => r.floorTail))}`,
    );
    expect(runs.filter((r) => !(r.floorTail > 3)).map((r) => r.run), "runs whose floor met the tail target, which the README says none did").toEqual([]);
  });

  it("give each revocation door's slowest p99 as the committed run measured it, every credential refused", () => {
    type Door = { p99Ms: number; notRefusedWithin10s: number };
    const revocation = bench<{ results: Record<string, Record<string, Door>> }>("revocation");
    const kinds = Object.values(revocation.results);
    expect(kinds).toHaveLength(4);
    const slowest = (door: string) => Math.max(...kinds.map((k) => k[door]!.p99Ms));
    const cell = row("bench:revocation")[2]!;
    for (const [label, door] of [
      ["forward-auth", "forwardAuth"],
      ["introspection", "introspection"],
      ["HAProxy route", "haproxyRoute"],
      ["PostgreSQL login", "postgresLogin"],
      ["open session", "postgresOpenSession"],
    ] as const)
      expect(cell).toContain(`${label} ${slowest(door)} ms`);
    expect(cell).toContain("every revoked credential refused");
    expect(kinds.flatMap((k) => Object.values(k)).every((d) => d.notRefusedWithin10s === 0)).toBe(true);
  });

  it("read bold figures as numbers, thousands separators included, and nothing else in bold", () => {
    expect(boldFigures("ratio **0.282** (107.4 ÷ 380.8), tail **12.22**; export **108,508** rows/s")).toEqual([0.282, 12.22, 108508]);
    expect(boldFigures("no bold figure, **met** only")).toEqual([]);
    expect(() =>
      expectLabelled("catalog **3.46**, approvals **11.02**", [
        ["catalog", 11.02],
        ["approvals", 3.46],
      ]),
    ).toThrow();
  });

  it("say truly when a benchmark builds: with no build, or BENCH_BUILD=1; otherwise it runs the standing build", () => {
    expect(section).toContain("The scripts run the\nproduction build already in `.next/standalone` when there is one: after a change, set\n`BENCH_BUILD=1`");
    const checkout = mkdtempSync(path.join(os.tmpdir(), "latchkey-bench-build-"));
    try {
      expect(needsBuild(checkout, {})).toBe(true);
      mkdirSync(path.join(checkout, ".next/standalone"), { recursive: true });
      writeFileSync(path.join(checkout, ".next/standalone/latchkey.mjs"), "");
      expect(needsBuild(checkout, {})).toBe(false);
      expect(needsBuild(checkout, { BENCH_BUILD: "1" })).toBe(true);
      expect(needsBuild(checkout, { BENCH_BUILD: "0" })).toBe(false);
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });

  it("name only repository paths that exist", () => {
    const named = [...namedPaths(section), ...namedPaths(benchmarksDoc)];
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).toEqual([]);
  });
});
