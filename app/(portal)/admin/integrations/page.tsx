import type { Metadata } from "next";
import Link from "next/link";
import { Alert } from "@/components/ui/alert";
import { DataTable } from "@/components/ui/data-table";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { approvalServiceStatuses, integrationStatuses } from "@/lib/integrations/status";
import { unavailableWorkflows } from "@/lib/workflows/catalog";

export const metadata: Metadata = { title: "Integrations" };

export default async function IntegrationsPage() {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">Integrations are open to admins only.</Alert>;
  const [statuses, services] = await Promise.all([integrationStatuses(), approvalServiceStatuses()]);
  const unavailable = unavailableWorkflows();
  return (
    <div>
      <h1 className="mb-1 text-2xl font-bold tracking-tight">Integrations</h1>
      <p className="mb-6 text-slate-600">Each outside system the policy configures, checked as this page loaded, with the last errors of executions on it.</p>
      <section aria-labelledby="unavailable-heading" className="mb-8">
        <h2 id="unavailable-heading" className="mb-2 text-lg font-semibold">
          Workflows that cannot be requested
        </h2>
        {unavailable.length === 0 ? (
          <p className="text-sm text-slate-600">Every workflow in the policy can be carried out.</p>
        ) : (
          <DataTable headers={["Workflow", "Target", "Why", "Set"]}>
            {unavailable.map((u) => (
              <tr key={`${u.workflowId}-${u.targetId}`} data-testid="unavailable-row">
                <td className="px-4 py-2">
                  <Link href={`/catalog/${u.workflowId}`} className="font-medium text-indigo-700 underline">
                    {u.workflowTitle}
                  </Link>
                </td>
                <td className="px-4 py-2">{u.targetTitle}</td>
                <td className="px-4 py-2">{u.reason}</td>
                <td className="px-4 py-2 font-mono text-xs">{u.missing.join(", ") || "a block in the policy"}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
      {statuses.length === 0 ? (
        <EmptyState title="No integrations configured" />
      ) : (
        <DataTable headers={["Target", "System", "Now", "Last errors"]}>
          {statuses.map((s) => (
            <tr key={`${s.targetId}-${s.kind}`} data-testid="integration-row">
              <td className="px-4 py-2 font-medium">{s.title}</td>
              <td className="px-4 py-2">{s.kind}</td>
              <td className={`px-4 py-2 ${s.reachable ? "text-emerald-700" : "text-rose-700"}`}>
                {s.reachable ? (s.kind === "slack" ? `reachable: ${s.detail}` : "reachable") : `unreachable: ${s.detail}`}
              </td>
              <td className="px-4 py-2 text-xs text-slate-600">
                {s.lastErrors.length === 0 ? "none" : s.lastErrors.map((e) => `${formatTime(e.at)}: ${e.message}`).join(" · ")}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <section aria-labelledby="services-heading" className="mt-8">
        <h2 id="services-heading" className="mb-2 text-lg font-semibold">
          E-mail, ticket checks and on-call schedules
        </h2>
        {services.length === 0 ? (
          <p className="text-sm text-slate-600">None configured: no SMTP server, no ticket check and no on-call schedule in the policy.</p>
        ) : (
          <DataTable headers={["System", "Used for", "Now", "Last errors"]}>
            {services.map((s) => (
              <tr key={`${s.system}-${s.subject}`} data-testid="service-row">
                <td className="px-4 py-2 font-medium">{s.system}</td>
                <td className="px-4 py-2">{s.subject}</td>
                <td className={`px-4 py-2 ${s.reachable ? "text-emerald-700" : "text-rose-700"}`}>{s.reachable ? s.detail : `unreachable: ${s.detail}`}</td>
                <td className="px-4 py-2 text-xs text-slate-600">
                  {s.lastErrors.length === 0 ? "none" : s.lastErrors.map((e) => `${formatTime(e.at)}: ${e.message}`).join(" · ")}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
    </div>
  );
}
