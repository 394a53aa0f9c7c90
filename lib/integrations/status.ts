import "server-only";
import { db } from "../db";
import { policy } from "../policy/current";
import type { IntegrationHealth, IntegrationStatus, ServiceStatus } from "./adapter";
import { listIntegrations } from "./registry";

/**
 * Admin → Integrations: every registered integration's health, checked now. The page names
 * no integration: each adapter's probe says which targets use it (lib/integrations/<name>/health.ts).
 */
export type { IntegrationStatus, ServiceStatus };

async function healthChecks(): Promise<{ name: string; health: IntegrationHealth }[]> {
  const loaded = await Promise.all(listIntegrations().map(async (a) => (a.health ? { name: a.name, health: (await a.health()).health } : null)));
  return loaded.filter((h) => h !== null);
}

/** The last execution errors on a target's requests, shown beside each of its integrations. */
async function lastExecutionErrors(targetId: string): Promise<IntegrationStatus["lastErrors"]> {
  const recent = await db.accessRequest.findMany({ where: { targetId }, select: { id: true }, orderBy: { createdAt: "desc" }, take: 200 });
  const errors = await db.auditEvent.findMany({
    where: { action: { in: ["request.execution_retry", "request.failed"] }, requestId: { in: recent.map((r) => r.id) } },
    orderBy: { id: "desc" },
    take: 3,
  });
  return errors.map((e) => ({
    at: e.occurredAt,
    message: String((e.data as Record<string, unknown>).error ?? (e.data as Record<string, unknown>).reason ?? e.action),
  }));
}

/** Every integration the policy's targets use, checked now, with the last execution errors on each target; then rows of their own (the Slack app). */
export async function integrationStatuses(): Promise<IntegrationStatus[]> {
  const checks = await healthChecks();
  const statuses: IntegrationStatus[] = [];
  for (const [targetId, target] of Object.entries(policy().targets)) {
    const runs = checks.flatMap(({ name, health }) => {
      const run = health.target?.(target, process.env);
      return run ? [{ kind: name, run }] : [];
    });
    if (runs.length === 0) continue;
    const lastErrors = await lastExecutionErrors(targetId);
    for (const { kind, run } of runs) statuses.push({ targetId, title: target.title, kind, ...(await run), lastErrors });
  }
  for (const { health } of checks) if (health.rows) statuses.push(...(await health.rows()));
  return statuses;
}

/** The services approvals lean on (e-mail, ticket checks, on-call schedules), each asked something harmless within 5 s. */
export async function approvalServiceStatuses(): Promise<ServiceStatus[]> {
  const checks = await healthChecks();
  return (await Promise.all(checks.map(({ health }) => health.services?.() ?? []))).flat();
}
