import type { z } from "zod";
import type { TargetDefinition } from "../policy/schema";
import type { Environment, Unavailable } from "../workflows/types";

/**
 * The integration plugin contract. An integration is one folder under lib/integrations/<name>/
 * holding its client, and an `adapter.ts` declaring what the rest of Latchkey reads from it:
 * the blocks it adds to a policy target, the environment variables it reads, and its health
 * probe. The adapter registers with one line in lib/integrations/registry.ts; the policy
 * schema (lib/policy/schema.ts), the environment parser (lib/env.ts) and Admin →
 * Integrations (lib/integrations/status.ts) read the registry and name no integration.
 *
 * An adapter is pure declarations (zod and plain functions), because the policy schema and
 * the environment parser import it; its health probe, which needs the database and the
 * network, is loaded only when the page asks.
 */
export interface IntegrationAdapter<Blocks extends z.ZodRawShape = z.ZodRawShape, Settings extends z.ZodRawShape = z.ZodRawShape> {
  /** Short lower-case name: the `kind` of its rows on Admin → Integrations. */
  name: string;
  /** Keys it adds to each policy target, each an optional strict object with a description. */
  targetBlocks?: Blocks;
  /** Environment variables it reads, validated with all the others at start-up (lib/env.ts). */
  settings?: Settings;
  /** Its health probe, imported on demand (the module's `health` export). */
  health?: () => Promise<{ health: IntegrationHealth }>;
}

/** What an integration reports on Admin → Integrations. */
export interface IntegrationHealth {
  /**
   * One probe per policy target that uses the integration (its block is set), or null for
   * targets that do not. The page adds the target's last execution errors.
   */
  target?(target: TargetDefinition, env: Environment): Promise<Probed> | null;
  /** Rows not tied to one target (the Slack app). */
  rows?(): Promise<IntegrationStatus[]>;
  /** Services approvals lean on (e-mail, ticket checks, on-call schedules), in their own table. */
  services?(): Promise<ServiceStatus[]>;
}

export interface Probed {
  reachable: boolean;
  detail: string;
}

export interface IntegrationStatus extends Probed {
  targetId: string;
  title: string;
  /** The adapter's name (postgres, haproxy, airflow, slack, ...). */
  kind: string;
  lastErrors: { at: Date; message: string }[];
}

export interface ServiceStatus extends Probed {
  /** What is asked: smtp, jira, ticket-http, pagerduty, opsgenie, ... */
  system: string;
  /** What it is used for, e.g. the target or the schedule. */
  subject: string;
  lastErrors: { at: Date; message: string }[];
}

/** Declares an adapter, keeping the literal shapes of its blocks and settings for the typed policy and environment. */
export function defineIntegration<const Blocks extends z.ZodRawShape = Record<never, never>, const Settings extends z.ZodRawShape = Record<never, never>>(
  adapter: IntegrationAdapter<Blocks, Settings>,
): IntegrationAdapter<Blocks, Settings> {
  return adapter;
}

/** The variables among `names` that are unset, as a reason to give when a workflow needs them. */
export function missingSettings(system: string, names: string[], env: Environment): Unavailable | null {
  const missing = names.filter((n) => !env[n]);
  return missing.length ? { reason: `${system} is not configured on this portal yet.`, missing } : null;
}

/** Runs a health check with a 5 s limit: what it returns (a sentence) or "answered", or why it failed. */
export async function probe(work: () => Promise<unknown>): Promise<Probed> {
  try {
    const answer = await Promise.race([work(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer within 5 s")), 5_000))]);
    return { reachable: true, detail: typeof answer === "string" ? answer : "answered" };
  } catch (error) {
    return { reachable: false, detail: (error as Error).message };
  }
}

/** The answer for a check that cannot run because variables are unset. */
export const unsetSettings = (names: string): Promise<Probed> => Promise.resolve({ reachable: false, detail: `${names} is not set` });
