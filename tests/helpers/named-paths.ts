import { readdirSync } from "node:fs";

/**
 * Repository paths a Markdown document names in backticks: `lib/x.ts`, `lib/x/`, `app/(portal)/y/[id]/page.tsx`,
 * `eslint.config.mjs`. Only spans starting with a top-level entry of the repository count (not `/api/v1/...` or
 * `POST ...`), and placeholders and globs (`<id>`, `*`) are skipped. The doc tests check that each exists.
 */
export function namedPaths(markdown: string, root = process.cwd()): string[] {
  const top = new Set(readdirSync(root).filter((name) => !name.startsWith(".") && name !== "node_modules"));
  const spans = [...markdown.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!);
  return spans.filter((span) => top.has(span.split("/")[0]!) && !/[<>*]/.test(span));
}
