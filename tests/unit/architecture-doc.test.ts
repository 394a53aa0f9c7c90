import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { namedPaths } from "../helpers/named-paths";

// docs/ARCHITECTURE.md is the map a newcomer reads first: a path it names that no longer exists, or a lib/ folder
// it does not name, would send them the wrong way. These checks make a move that forgets the map fail.
const root = process.cwd();
const doc = readFileSync(path.join(root, "docs/ARCHITECTURE.md"), "utf8");

describe("docs/ARCHITECTURE.md", () => {
  it("names only paths that exist", () => {
    const named = namedPaths(doc);
    // The request's path alone names dozens; far fewer means the extraction broke, not that the doc is clean.
    expect(named.length).toBeGreaterThan(40);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).toEqual([]);
  });

  it("would notice a path that does not exist", () => {
    const named = namedPaths(
      "See `lib/approvals/engine.ts`, `lib/nowhere/gone.ts`, `app/(portal)/requests/[id]/page.tsx`, `/api/v1/requests` and `lib/workflows/<id>/`.",
    );
    expect(named).toEqual(["lib/approvals/engine.ts", "lib/nowhere/gone.ts", "app/(portal)/requests/[id]/page.tsx"]);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).toEqual(["lib/nowhere/gone.ts"]);
  });

  it("has a line in the folder map for every folder under lib/", () => {
    const folders = readdirSync(path.join(root, "lib"), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect(folders.length).toBeGreaterThan(10);
    const map = doc.slice(doc.indexOf("## Folder map"), doc.indexOf("## A request's path"));
    expect(folders.filter((name) => !map.includes(`- \`lib/${name}/\`:`))).toEqual([]);
  });

  it("states the import rules eslint.config.mjs enforces", () => {
    const config = readFileSync(path.join(root, "eslint.config.mjs"), "utf8");
    // Each folder the lint fences off from lib/authz is named in the doc's row for lib/authz.
    const fenced = config
      .match(/\(api\|actions\|mcp\|[a-z|]+\)/)![0]
      .slice(1, -1)
      .split("|");
    const row = doc.split("\n").find((line) => line.startsWith("| `lib/authz/`"))!;
    expect(row).toBeDefined();
    expect(fenced.filter((folder) => !row.includes(`\`lib/${folder}/\``))).toEqual([]);
  });
});
