import type { Metadata } from "next";
import Link from "next/link";
import { ChainStatus } from "@/components/history/chain-status";
import { HistoryFilterForm } from "@/components/history/filter-form";
import { actionLabel, actorLabel } from "@/components/requests/timeline";
import { Alert } from "@/components/ui/alert";
import { DataTable } from "@/components/ui/data-table";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { searchHistory } from "@/lib/history/search";
import { describeFilters, historyFiltersSchema } from "@/lib/history/filters";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { policy } from "@/lib/policy/current";
import { queryParam, type PageSearch } from "@/lib/http/query-param";

export const metadata: Metadata = { title: "History" };

const PAGING = ["after", "before", "end"];

export default async function HistoryPage({ searchParams }: { searchParams: Promise<PageSearch> }) {
  const who = await requirePrincipal();
  if (!hasRole(who, "auditor", "admin")) {
    return <Alert tone="error">The audit history is open to auditors and admins only.</Alert>;
  }
  const raw = Object.fromEntries(
    Object.entries(await searchParams)
      .map(([k, v]) => [k, queryParam(v)])
      .filter(([, v]) => v !== "" && v !== undefined),
  ) as Record<string, string>;
  const parsed = historyFiltersSchema.safeParse(raw);
  const page = parsed.success ? await searchHistory(parsed.data) : null;
  // Targets by the title the catalog and request pages use; a target no longer in the policy keeps its id.
  const targets = policy().targets;
  const filterQuery = new URLSearchParams(Object.entries(raw).filter(([k]) => !PAGING.includes(k)));
  const link = (extra: Record<string, string>) => {
    const q = new URLSearchParams(filterQuery);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return `/history?${q.toString()}`;
  };
  const exportLink = (format: string) => `/api/history/export?${new URLSearchParams({ ...Object.fromEntries(filterQuery), format }).toString()}`;
  const active = parsed.success ? describeFilters(parsed.data) : {};
  return (
    <div>
      <div className="mb-1 flex flex-wrap items-baseline justify-between gap-3">
        <h1 className="text-2xl font-bold tracking-tight">History</h1>
        <nav aria-label="Auditor tools" className="flex gap-4 text-sm">
          <Link href="/history/review" className="text-indigo-700 hover:underline">
            Access review
          </Link>
          <a href={exportLink("csv")} className="text-indigo-700 hover:underline" download>
            Export CSV
          </a>
          <a href={exportLink("jsonl")} className="text-indigo-700 hover:underline" download>
            Export JSON Lines
          </a>
        </nav>
      </div>
      <p className="mb-3 text-slate-600">
        Every audit event, {raw.sort === "oldest" ? "oldest" : "newest"} first. Times are UTC. Exports take the filters below.
      </p>
      <div className="mb-4">
        <ChainStatus />
      </div>
      <HistoryFilterForm values={raw} />
      {!parsed.success ? (
        <Alert tone="error">{parsed.error.issues.map((i) => `${String(i.path[0] ?? "filter")}: ${i.message}`).join(" ")}</Alert>
      ) : page && page.events.length === 0 ? (
        <EmptyState title="No events match these filters">
          {Object.keys(active).length ? "Widen the dates or clear a filter." : "Nothing has been recorded yet."}
        </EmptyState>
      ) : page ? (
        <>
          <DataTable headers={["Time", "Actor", "Event", "Target", "Status", "Request"]}>
            {page.events.map((e) => (
              <tr key={e.id.toString()} data-testid="history-row" className="align-top">
                <td className="px-4 py-2 whitespace-nowrap">
                  {formatTime(e.occurredAt)}
                  <div className="font-mono text-xs text-slate-600">{e.seq === null ? "not yet chained" : `#${e.seq.toString()}`}</div>
                </td>
                <td className="px-4 py-2">
                  {e.actorEmail && e.actorType !== "system" ? (
                    <Link href={`/history/people/${encodeURIComponent(e.actorEmail)}`} className="text-indigo-700 hover:underline">
                      {actorLabel(e)}
                    </Link>
                  ) : (
                    actorLabel(e)
                  )}
                  {e.ip ? <div className="text-xs text-slate-600">{e.ip}</div> : null}
                </td>
                <td className="px-4 py-2">
                  {actionLabel(e.action)}
                  {e.note ? (
                    <div className="max-w-sm truncate text-xs text-slate-600" title={e.note}>
                      “{e.note}”
                    </div>
                  ) : null}
                </td>
                <td className="px-4 py-2 text-slate-700">
                  {e.targetId ? (targets[e.targetId]?.title ?? `${e.targetId}${e.environment ? ` (${e.environment})` : ""}`) : "—"}
                </td>
                <td className="px-4 py-2 whitespace-nowrap text-slate-600">{e.toStatus ? `${e.fromStatus ?? "new"} → ${e.toStatus}` : "—"}</td>
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
          <nav aria-label="Pages" className="mt-4 flex justify-between text-sm">
            <span className="flex gap-4">
              {page.previous || raw.end ? (
                <Link href={link({})} className="text-indigo-700 hover:underline">
                  « First
                </Link>
              ) : null}
              {page.previous ? (
                <Link href={link({ before: page.previous })} className="text-indigo-700 hover:underline">
                  ‹ Previous
                </Link>
              ) : null}
            </span>
            <span className="flex gap-4">
              {page.next ? (
                <Link href={link({ after: page.next })} className="text-indigo-700 hover:underline">
                  Next ›
                </Link>
              ) : null}
              {page.next ? (
                <Link href={link({ end: "last" })} className="text-indigo-700 hover:underline">
                  Last »
                </Link>
              ) : null}
            </span>
          </nav>
        </>
      ) : null}
    </div>
  );
}
