import "server-only";
import { db } from "../db";
import { QUEUES } from "../jobs/queue";
import { chainingLag } from "../audit/unchained";

/**
 * Cluster-wide Prometheus metrics, computed from the database on each scrape: every instance
 * reports the same figures whichever one is asked, and nothing is lost when an instance
 * restarts. Served apart from each instance's own series (/api/metrics/cluster), so a
 * scraper takes them from one target and sums over instances stay right.
 *
 * Written out by hand rather than through prom-client: these are not counters this process
 * keeps but a snapshot of rows, and prom-client's histogram cannot be set from bucket counts.
 */

const LATENCY_BUCKETS = [60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600];

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export async function metricsText(): Promise<string> {
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(",");
      out.push(`${name}${l ? `{${l}}` : ""} ${value}`);
    }
  };

  const byState = await db.$queryRaw<
    { status: string; workflowId: string; n: bigint }[]
  >`SELECT status::text, "workflowId", count(*) AS n FROM "AccessRequest" GROUP BY 1, 2`;
  metric(
    "latchkey_requests",
    "gauge",
    "Requests by state and workflow.",
    byState.map((r) => [{ state: r.status, workflow: r.workflowId }, Number(r.n)]),
  );

  const buckets = await db.$queryRawUnsafe<Record<string, number>[]>(
    `SELECT count(*)::int AS count, coalesce(sum(extract(epoch FROM "decidedAt" - "createdAt")), 0)::float AS sum, ${LATENCY_BUCKETS.map((b) => `count(*) FILTER (WHERE "decidedAt" - "createdAt" <= interval '${b} seconds')::int AS "le_${b}"`).join(", ")}
     FROM "AccessRequest" WHERE "decidedAt" IS NOT NULL AND "autoApprovedBy" IS NULL AND "breakGlass" = false`,
  );
  const h = buckets[0]!;
  out.push(
    "# HELP latchkey_approval_latency_seconds Time from request to decision, for decisions made by people.",
    "# TYPE latchkey_approval_latency_seconds histogram",
  );
  for (const b of LATENCY_BUCKETS) out.push(`latchkey_approval_latency_seconds_bucket{le="${b}"} ${h[`le_${b}`] ?? 0}`);
  out.push(`latchkey_approval_latency_seconds_bucket{le="+Inf"} ${h.count ?? 0}`);
  out.push(`latchkey_approval_latency_seconds_sum ${h.sum ?? 0}`, `latchkey_approval_latency_seconds_count ${h.count ?? 0}`);

  const failures = await db.$queryRaw<
    { action: string; n: bigint }[]
  >`SELECT action, count(*) AS n FROM "AuditEvent" WHERE action IN ('request.failed', 'request.execution_retry') GROUP BY action`;
  const count = (a: string) => Number(failures.find((f) => f.action === a)?.n ?? 0);
  metric("latchkey_execution_failures_total", "counter", "Executions on outside systems that failed for good.", [[{}, count("request.failed")]]);
  metric("latchkey_execution_retries_total", "counter", "Execution attempts that failed and were retried.", [[{}, count("request.execution_retry")]]);
  const [undo] = await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "AccessRequest" WHERE "undoPending"`;
  metric("latchkey_revocations_pending", "gauge", "Grants that ended but whose outside system is not cleaned up yet (retried until done).", [
    [{}, Number(undo?.n ?? 0)],
  ]);

  const queues = await db.$queryRaw<{ name: string; state: string; n: bigint }[]>`
    SELECT name, state::text, count(*) AS n FROM pgboss.job WHERE state IN ('created', 'retry', 'active') AND name = ANY(${Object.values(QUEUES)}) GROUP BY 1, 2`;
  metric(
    "latchkey_queue_depth",
    "gauge",
    "Jobs waiting or running, by queue and state.",
    queues.map((q) => [{ queue: q.name, state: q.state }, Number(q.n)]),
  );

  const [deliveries] = await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "NotificationDelivery" WHERE status = 'failed'`;
  metric("latchkey_notification_failures", "gauge", "Notifications that failed for good.", [[{}, Number(deliveries?.n ?? 0)]]);
  const [oldest] = await db.$queryRaw<
    { seconds: number | null }[]
  >`SELECT extract(epoch FROM now() - min(coalesce("endedAt", "updatedAt")))::float AS seconds FROM "AccessRequest" WHERE "undoPending"`;
  metric("latchkey_revocation_pending_oldest_seconds", "gauge", "Age of the oldest grant whose outside system is not cleaned up yet (0 when none).", [
    [{}, oldest?.seconds ?? 0],
  ]);
  const chain = await db.auditVerification.findFirst({ where: { finishedAt: { not: null } }, orderBy: { startedAt: "desc" } });
  // Separate gauges: "never verified" is not a value of a 0/1 gauge, and "could not be checked" (a key this installation does not hold) is not tampering.
  metric("latchkey_audit_chain_verified", "gauge", "1 once the audit chain has been walked at least once.", [[{}, chain ? 1 : 0]]);
  if (chain) {
    // Absent when the last walk could not check the events (a key this installation does not hold): neither intact nor altered, so no alert on 0 fires.
    if (chain.outcome !== "unverifiable")
      metric(
        "latchkey_audit_chain_intact",
        "gauge",
        "1 when the last walk of the audit chain found it intact, 0 when it found an event altered, removed or inserted.",
        [[{}, chain.ok ? 1 : 0]],
      );
    metric("latchkey_audit_chain_last_verified_timestamp_seconds", "gauge", "When the last walk of the audit chain finished (Unix time).", [
      [{}, Math.floor(chain.finishedAt!.getTime() / 1000)],
    ]);
  }
  metric(
    "latchkey_audit_chain_unverifiable_events",
    "gauge",
    "Events the last walk could not check: chained under an encryption key this installation does not hold (not tampering).",
    [[{}, chain?.outcome === "unverifiable" ? chain.uncheckedEvents : 0]],
  );
  // Live, not from the last walk: events committed but not yet linked into the chain (lib/audit/chainer.ts).
  const lag = await chainingLag();
  metric("latchkey_audit_unchained_events", "gauge", "Audit events committed but not yet linked into the chain (each is sealed on its own meanwhile).", [
    [{}, lag.events],
  ]);
  metric("latchkey_audit_chain_lag_seconds", "gauge", "How long the oldest audit event not yet linked into the chain has waited (0 when none).", [
    [{}, lag.oldestSeconds],
  ]);
  return `${out.join("\n")}\n`;
}
