import type { Metadata } from "next";
import Link from "next/link";
import { actionLabel } from "@/components/requests/timeline";
import { Alert } from "@/components/ui/alert";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { inputClass } from "@/components/requests/field";
import { historyPage } from "@/lib/approvals/queries";
import { HISTORY_STATUSES, historyFiltersSchema } from "@/lib/audit/history-filters";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { DataTable } from "@/components/ui/data-table";

export const metadata: Metadata = { title: "History" };

type Search = Record<string, string | string[] | undefined>;

export default async function HistoryPage({ searchParams }: { searchParams: Promise<Search> }) {
  const who = await requirePrincipal();
  if (!hasRole(who, "auditor", "admin")) {
    return <Alert tone="error">The audit history is open to auditors and admins only.</Alert>;
  }
  const raw = Object.fromEntries(Object.entries(await searchParams).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]).filter(([, v]) => v !== "" && v !== undefined));
  const parsed = historyFiltersSchema.safeParse(raw);
  const page = parsed.success ? await historyPage(parsed.data) : null;
  const keep = (extra: Record<string, string>) => {
    const q = new URLSearchParams(Object.entries(raw).filter(([k]) => k !== "before") as [string, string][]);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return `/history?${q.toString()}`;
  };
  return (
    <div>
      <h1 className="mb-1 text-2xl font-bold tracking-tight">History</h1>
      <p className="mb-6 text-slate-600">Every audit event, newest first. Times are UTC.</p>
      <form method="get" className="mb-6 grid grid-cols-2 gap-3 rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:grid-cols-6" aria-label="Filters">
        <label className="text-sm font-semibold sm:col-span-2">
          Actor
          <input name="actor" defaultValue={raw.actor} placeholder="e-mail contains…" className={inputClass} />
        </label>
        <label className="text-sm font-semibold">
          Status after
          <select name="status" defaultValue={raw.status ?? ""} className={inputClass}>
            <option value="">any</option>
            {HISTORY_STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label className="text-sm font-semibold">
          From
          <input type="date" name="from" defaultValue={raw.from} className={inputClass} />
        </label>
        <label className="text-sm font-semibold">
          To
          <input type="date" name="to" defaultValue={raw.to} className={inputClass} />
        </label>
        <div className="flex items-end gap-2">
          <button type="submit" className="rounded-md bg-slate-900 px-3.5 py-2 text-sm font-semibold text-white hover:bg-slate-700">
            Filter
          </button>
          <Link href="/history" className="px-2 py-2 text-sm text-slate-600 hover:underline">
            Clear
          </Link>
        </div>
      </form>
      {!parsed.success ? (
        <Alert tone="error">{parsed.error.issues.map((i) => `${String(i.path[0] ?? "filter")}: ${i.message}`).join(" ")}</Alert>
      ) : page && page.events.length === 0 ? (
        <EmptyState title="No events match these filters" />
      ) : page ? (
        <>
          <DataTable headers={["Time", "Actor", "Event", "Status", "Request"]}>
                {page.events.map((e) => (
                  <tr key={e.id} data-testid="history-row">
                    <td className="px-4 py-2 whitespace-nowrap">{formatTime(e.occurredAt)}</td>
                    <td className="px-4 py-2">{e.actorType === "system" ? "Latchkey" : e.actorEmail}</td>
                    <td className="px-4 py-2">{actionLabel(e.action)}</td>
                    <td className="px-4 py-2 text-slate-600">{e.toStatus ? `${e.fromStatus ?? "new"} → ${e.toStatus}` : "—"}</td>
                    <td className="px-4 py-2">
                      {e.requestId ? (
                        <Link href={`/requests/${e.requestId}`} className="font-mono text-xs text-indigo-700 hover:underline">
                          {e.requestId.slice(0, 10)}…
                        </Link>
                      ) : (
                        "—"
                      )}
                    </td>
                  </tr>
                ))}
              </DataTable>
          <div className="mt-4 flex justify-between text-sm">
            {raw.before ? <Link href={keep({})} className="text-indigo-700 hover:underline">← Newest</Link> : <span />}
            {page.nextBefore ? <Link href={keep({ before: page.nextBefore })} className="text-indigo-700 hover:underline">Older events →</Link> : null}
          </div>
        </>
      ) : null}
    </div>
  );
}
