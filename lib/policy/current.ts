import { env } from "../env";
import { currentPolicy } from "./load";
import type { Policy } from "./schema";

/** The policy in force, from LATCHKEY_POLICY_FILE. */
export function policy(): Policy {
  return currentPolicy(env().LATCHKEY_POLICY_FILE);
}
