import type { z } from "zod";
import type { IntegrationAdapter } from "./adapter";
import { airflow } from "./airflow/adapter";
import { email } from "./email/adapter";
import { haproxy } from "./haproxy/adapter";
import { oncall } from "./oncall/adapter";
import { postgres } from "./postgres/adapter";
import { slack } from "./slack/adapter";
import { tickets } from "./tickets/adapter";

/**
 * Every integration Latchkey ships. Adding one is its folder and one line here: the policy
 * schema, the environment parser and Admin → Integrations read this list. The order is the
 * order of their rows on the page and of their keys in a policy target.
 */
const BUILT_IN = [postgres, haproxy, airflow, slack, email, tickets, oncall] as const;

type BuiltIn = (typeof BUILT_IN)[number];
type Merged<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** The target blocks of the shipped integrations, merged: the typed shape of a policy target's integration keys. */
export type TargetBlocks = Merged<NonNullable<BuiltIn["targetBlocks"]>>;
/** The environment variables of the shipped integrations, merged: the typed part of `env()` they add. */
export type IntegrationSettings = Merged<NonNullable<BuiltIn["settings"]>>;

const added: IntegrationAdapter[] = [];
let version = 0;

/** Adds an integration at run time (a test's). Names, block keys and variables are unique. */
export function registerIntegration(adapter: IntegrationAdapter): void {
  const all = listIntegrations();
  if (all.some((a) => a.name === adapter.name)) throw new Error(`An integration "${adapter.name}" is already registered.`);
  const taken = (pick: (a: IntegrationAdapter) => object | undefined) => new Set(all.flatMap((a) => Object.keys(pick(a) ?? {})));
  const blocks = taken((a) => a.targetBlocks);
  const settings = taken((a) => a.settings);
  for (const key of Object.keys(adapter.targetBlocks ?? {}))
    if (blocks.has(key)) throw new Error(`The policy key "${key}" of integration "${adapter.name}" is another integration's.`);
  for (const key of Object.keys(adapter.settings ?? {}))
    if (settings.has(key)) throw new Error(`The variable ${key} of integration "${adapter.name}" is another integration's.`);
  added.push(adapter);
  version++;
}

export function listIntegrations(): readonly IntegrationAdapter[] {
  return [...BUILT_IN, ...added];
}

/** Changes each time an integration is added, so schemas built from the registry know to rebuild. */
export const registryVersion = () => version;

const merge = (pick: (a: IntegrationAdapter) => z.ZodRawShape | undefined) => Object.assign({}, ...listIntegrations().map((a) => pick(a) ?? {}));

/** Every registered integration's target blocks; typed as the shipped ones (a test's extra keys are checked, not typed). */
export const targetBlocks = (): TargetBlocks => merge((a) => a.targetBlocks);

/** Every registered integration's environment variables; typed as the shipped ones. */
export const integrationSettings = (): IntegrationSettings => merge((a) => a.settings);
