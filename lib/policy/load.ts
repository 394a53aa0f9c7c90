import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { checkConfigText } from "../config/validate-file";
import { currentPolicySchema, type Policy } from "./schema";

export class PolicyError extends Error {}

/** Parses and validates policy text; errors name the file, line and column, and the path inside it. */
export function parsePolicy(text: string, file: string): Policy {
  const result = checkConfigText(text, file, currentPolicySchema());
  if (!result.ok) throw new PolicyError(`${file}: invalid policy\n${result.problems.map((p) => `  ${p}`).join("\n")}`);
  return result.data;
}

export function loadPolicyFile(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new PolicyError(`${file}: cannot read the policy file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parsePolicy(text, file);
}

let cache: { file: string; mtimeMs: number; policy: Policy } | undefined;

/**
 * The current policy. Outside production the file is re-read when it changes, so edits
 * apply without a restart; an invalid edit raises the error instead of keeping stale rules.
 */
export function currentPolicy(file: string, reload = process.env.NODE_ENV !== "production"): Policy {
  const resolved = path.resolve(file);
  if (cache && cache.file === resolved && !reload) return cache.policy;
  const mtimeMs = statSync(resolved, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  if (cache && cache.file === resolved && cache.mtimeMs === mtimeMs) return cache.policy;
  const policy = loadPolicyFile(file);
  cache = { file: resolved, mtimeMs, policy };
  return policy;
}
