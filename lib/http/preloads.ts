import path from "node:path";

/**
 * NODE_OPTIONS for a process Latchkey starts: the parent's own options, then `--require` of
 * each preload in `dir` (lib/http, or its copy beside the production entry): h2c-preload.cjs,
 * supervised-preload.cjs.
 */
export function nodeOptionsWith(dir: string, preloads: string[]): string {
  return [process.env.NODE_OPTIONS ?? "", ...preloads.map((file) => `--require ${JSON.stringify(path.join(dir, file))}`)].join(" ").trim();
}
