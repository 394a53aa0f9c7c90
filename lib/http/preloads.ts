import path from "node:path";
import { KEEP_ALIVE_MS } from "./plain";

/**
 * NODE_OPTIONS for a process Latchkey starts: the parent's own options, then `--require` of
 * each preload in `dir` (lib/http, or its copy beside the production entry): h2c-preload.cjs,
 * supervised-preload.cjs.
 */
export function nodeOptionsWith(dir: string, preloads: string[], base = process.env.NODE_OPTIONS): string {
  return [base ?? "", ...preloads.map((file) => `--require ${JSON.stringify(path.join(dir, file))}`)].join(" ").trim();
}

/**
 * V8's young generation for the web server, in MB a semi-space (Node.js's default is 16). Each
 * API call allocates about a megabyte that dies young (requests, streams, promises, rows), so
 * with 16 MB the server ran a scavenge about every 15 calls under load, each stopping every call
 * in flight; with 64 MB it ran about a third as many and spent half the time or less in them
 * (bench:approvals), for at most 96 MB more memory (a semi-space is allocated twice). An operator's own
 * `--max-semi-space-size` in NODE_OPTIONS is kept.
 */
export const WEB_SEMI_SPACE_MB = 64;

export function withWebYoungGeneration(nodeOptions: string): string {
  if (/(^|\s)--max-semi-space-size[=\s]/.test(nodeOptions)) return nodeOptions;
  return `${nodeOptions} --max-semi-space-size=${WEB_SEMI_SPACE_MB}`.trim();
}

/**
 * What scripts/start.ts gives Next.js's server besides its port, from the entry's environment:
 * the keep-alive time-out (KEEP_ALIVE_MS, as the lean listener's, unless the operator sets
 * KEEP_ALIVE_TIMEOUT) and NODE_OPTIONS (the operator's own, then the preloads in `preloadDir`,
 * then the young generation).
 */
export function webServerSettings(env: Record<string, string | undefined>, preloadDir: string): { KEEP_ALIVE_TIMEOUT: string; NODE_OPTIONS: string } {
  return {
    KEEP_ALIVE_TIMEOUT: env.KEEP_ALIVE_TIMEOUT ?? String(KEEP_ALIVE_MS),
    NODE_OPTIONS: withWebYoungGeneration(nodeOptionsWith(preloadDir, ["h2c-preload.cjs", "supervised-preload.cjs"], env.NODE_OPTIONS)),
  };
}
