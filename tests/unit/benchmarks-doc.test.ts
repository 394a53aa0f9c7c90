import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

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

/** The README table's row for `npm run <script>`, split into its cells. */
function row(script: string): string[] {
  const line = section.split("\n").find((l) => l.startsWith(`| \`npm run ${script}\` |`));
  if (!line) throw new Error(`README's Benchmarks table has no row for npm run ${script}`);
  return line.split(" | ").map((cell) => cell.replace(/^\| | \|$/g, ""));
}

/** The figures a cell prints in bold, as numbers (`**0.282**` → 0.282), in order. */
function boldFigures(cell: string): number[] {
  return [...cell.matchAll(/\*\*([0-9][0-9,.]*)\*\*/g)].map((m) => Number(m[1]!.replace(/,/g, "")));
}

function bench<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(root, `bench/${name}.json`), "utf8")) as T;
}

/** Repository paths named in backticks (as tests/unit/architecture-doc.test.ts reads them): placeholders and globs skipped. */
const TOP = new Set(readdirSync(root).filter((name) => !name.startsWith(".") && name !== "node_modules"));
function namedPaths(markdown: string): string[] {
  const spans = [...markdown.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!);
  return spans.filter((span) => TOP.has(span.split("/")[0]!) && !/[<>*]/.test(span));
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

  it("print in bold the ratios of the committed runs in bench/*.json, in the order the JSON gives them", () => {
    const history = bench<{ spread: { slowestOverMedianP95: number }; export: { exportOverCopy: number } }>("history");
    expect(boldFigures(row("bench:history")[2]!)).toEqual([history.spread.slowestOverMedianP95, history.export.exportOverCopy]);

    const pages = bench<{ ratios: Record<string, { p50OverFloorP50: number }> }>("pages");
    expect(boldFigures(row("bench:pages")[2]!)).toEqual(["/catalog", "/approvals", "/history"].map((page) => pages.ratios[page]!.p50OverFloorP50));

    const approvals = bench<{ ratios: { approvalsOverFloor: number; pacedP99OverOneAtATimeP99: number }; errors: number; doubleExecutions: number }>(
      "approvals",
    );
    expect(boldFigures(row("bench:approvals")[2]!)).toEqual([approvals.ratios.approvalsOverFloor, approvals.ratios.pacedP99OverOneAtATimeP99]);
    // The row says the run had neither; the JSON must agree.
    expect(row("bench:approvals")[2]).toContain("0 errors, 0 double executions");
    expect([approvals.errors, approvals.doubleExecutions]).toEqual([0, 0]);

    type Kind = { leanOverNodeConstant: number; pacedP99LeanOverNodeConstant: number };
    const authz = bench<{ ratios: { forwardAuth: Kind; introspection: Kind } }>("authz");
    expect(boldFigures(row("bench:authz")[2]!)).toEqual([
      authz.ratios.forwardAuth.leanOverNodeConstant,
      authz.ratios.introspection.leanOverNodeConstant,
      authz.ratios.forwardAuth.pacedP99LeanOverNodeConstant,
      authz.ratios.introspection.pacedP99LeanOverNodeConstant,
    ]);
  });

  it("would notice a figure that is not the committed run's", () => {
    expect(boldFigures("ratio **0.282** (107.4 ÷ 380.8), tail **12.22**; export **108,508** rows/s")).toEqual([0.282, 12.22, 108508]);
    expect(boldFigures("no bold figure, **met** only")).toEqual([]);
  });

  it("name only repository paths that exist", () => {
    const named = [...namedPaths(section), ...namedPaths(benchmarksDoc)];
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).toEqual([]);
  });
});
