import { z } from "zod";
import { parseDuration } from "./duration";

/**
 * Value schemas the policy's objects share, the integrations' target blocks included
 * (lib/integrations/<name>/adapter.ts), so a duration or an environment variable name is
 * checked, and refused, the same way wherever the policy gives one.
 */
export const policyId = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { message: "must be lower-case letters, digits and dashes" });

export const policyGroup = z.string().min(1);

/** "30m", "8h", "1d": parsed to seconds. */
export const policyDuration = z.string().transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === undefined) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a duration (use e.g. 30m, 8h, 1d)` });
    return z.NEVER;
  }
  return seconds;
});

/** The name of an environment variable holding a URL or secret: secrets never live in the policy. */
export const envName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, { message: "must name an environment variable (secrets never live in the policy)" });
