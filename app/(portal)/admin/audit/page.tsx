import type { Metadata } from "next";
import { Alert } from "@/components/ui/alert";
import { ChainStatus } from "@/components/history/chain-status";
import { VerifyChainButton } from "@/components/history/verify-button";
import { DataTable } from "@/components/ui/data-table";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { db } from "@/lib/db";

export const metadata: Metadata = { title: "Audit chain" };

export default async function AuditChainPage() {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin", "auditor")) return <Alert tone="error">The audit chain is open to auditors and admins only.</Alert>;
  const runs = await db.auditVerification.findMany({ orderBy: { startedAt: "desc" }, take: 30 });
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold tracking-tight">Audit chain</h1>
        <p className="mt-1 text-slate-600">
          Each audit event is sealed with a keyed hash as it is written, then chained to the one before it (within about a second), and the database refuses to
          change or delete events. The chain is walked every night (and by <code className="font-mono text-sm">npm run audit:verify</code>); a walk names the
          first event that was altered, removed or inserted.
        </p>
      </div>
      <ChainStatus />
      <VerifyChainButton />
      {runs.length === 0 ? (
        <EmptyState title="No verification yet" />
      ) : (
        <DataTable headers={["Started", "By", "Result", "Events", "Up to", "Not yet chained", "Problem"]}>
          {runs.map((r) => (
            <tr key={r.id} data-testid="verification-row">
              <td className="px-4 py-2 whitespace-nowrap">{formatTime(r.startedAt)}</td>
              <td className="px-4 py-2">{r.trigger}</td>
              <td
                className={`px-4 py-2 font-medium ${r.ok ? "text-emerald-800" : r.outcome === "unverifiable" ? "text-amber-800" : r.ok === false ? "text-rose-700" : "text-slate-600"}`}
              >
                {r.ok ? "intact" : r.outcome === "unverifiable" ? "cannot check (key missing)" : r.ok === false ? "BROKEN" : "running"}
              </td>
              <td className="px-4 py-2 tabular-nums">{r.eventsChecked}</td>
              <td className="px-4 py-2 font-mono text-xs">{r.lastSeq ? `#${r.lastSeq}` : "—"}</td>
              <td className="px-4 py-2 tabular-nums">{r.unchainedEvents ? `${r.unchainedEvents} (oldest ${formatTime(r.oldestUnchainedAt)})` : "0"}</td>
              <td className={`px-4 py-2 ${r.outcome === "unverifiable" ? "text-amber-900" : "text-rose-800"}`}>{r.problem ?? ""}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </div>
  );
}
