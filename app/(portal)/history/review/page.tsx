import type { Metadata } from "next";
import Link from "next/link";
import { BarList, ColumnChart } from "@/components/history/charts";
import { ChainStatus } from "@/components/history/chain-status";
import { PrintButton } from "@/components/history/print-button";
import { inputClass } from "@/components/ui/field";
import { Alert } from "@/components/ui/alert";
import { DataTable } from "@/components/ui/data-table";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { formatDuration } from "@/lib/policy/duration";
import { accessReview, reviewPeriodSchema } from "@/lib/history/review";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { queryParam, type PageSearch } from "@/lib/http/query-param";

export const metadata: Metadata = { title: "Access review" };

function defaultPeriod() {
  const to = new Date();
  const from = new Date(to.getTime() - 29 * 86_400_000);
  return { from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) };
}

export default async function ReviewPage({ searchParams }: { searchParams: Promise<PageSearch> }) {
  const who = await requirePrincipal();
  if (!hasRole(who, "auditor", "admin")) return <Alert tone="error">The access review is open to auditors and admins only.</Alert>;
  const given = await searchParams;
  const chosen = { from: queryParam(given.from), to: queryParam(given.to) };
  const values = { ...defaultPeriod(), ...Object.fromEntries(Object.entries(chosen).filter(([, v]) => v)) };
  const parsed = reviewPeriodSchema.safeParse(values);
  const review = parsed.success ? await accessReview(parsed.data) : null;
  const csv = `/api/history/review?${new URLSearchParams({ from: values.from, to: values.to, format: "csv" }).toString()}`;
  return (
    <div className="space-y-6 print:space-y-4">
      <div className="flex flex-wrap items-baseline justify-between gap-3">
        <div>
          <Link href="/history" className="text-sm text-slate-600 hover:underline print:hidden">
            ← History
          </Link>
          <h1 className="text-2xl font-bold tracking-tight">Access review</h1>
          <p className="text-slate-600">
            Every grant active from {values.from} to {values.to} (UTC, both days included): who had access to what, approved by whom, why, and for how long.
          </p>
        </div>
        <div className="flex gap-3 print:hidden">
          <a href={csv} download className="rounded-md px-3 py-2 text-sm font-semibold text-indigo-700 ring-1 ring-slate-300 ring-inset hover:bg-slate-50">
            Download CSV
          </a>
          <PrintButton />
        </div>
      </div>
      <form method="get" aria-label="Period" className="flex flex-wrap items-end gap-3 rounded-lg border border-slate-200 bg-white p-4 shadow-sm print:hidden">
        <label className="text-sm font-semibold">
          From
          <input type="date" name="from" defaultValue={values.from} className={inputClass} />
        </label>
        <label className="text-sm font-semibold">
          To
          <input type="date" name="to" defaultValue={values.to} className={inputClass} />
        </label>
        <button type="submit" className="rounded-md bg-slate-900 px-3.5 py-2 text-sm font-semibold text-white hover:bg-slate-700">
          Show
        </button>
      </form>
      <ChainStatus />
      {!parsed.success ? (
        <Alert tone="error">{parsed.error.issues.map((i) => i.message).join(" ")}</Alert>
      ) : review && review.grants.length === 0 ? (
        <EmptyState title="No grant was active in this period">Choose a wider period.</EmptyState>
      ) : review ? (
        <>
          <dl className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6" aria-label="Totals">
            {[
              ["Grants", review.totals.grants],
              ["People", review.totals.people],
              ["Auto-approved", review.totals.autoApproved],
              ["Break-glass", review.totals.breakGlass],
              ["Break-glass not reviewed", review.totals.breakGlassUnreviewed],
              ["Approved without a comment", review.totals.noApproverComment],
            ].map(([label, value]) => (
              <div key={label} className="rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
                <dt className="text-xs text-slate-600">{label}</dt>
                <dd
                  className={`text-2xl font-bold tabular-nums ${(label === "Break-glass not reviewed" || label === "Approved without a comment") && Number(value) > 0 ? "text-amber-700" : ""}`}
                >
                  {value}
                </dd>
              </div>
            ))}
          </dl>
          <div className="grid gap-4 lg:grid-cols-2">
            <ColumnChart title="Grants active per day" points={review.perDay.map((d) => ({ label: d.day, value: d.active }))} />
            <BarList title="Grants by target" rows={review.perTarget.map((t) => ({ label: t.title, value: t.grants }))} />
          </div>
          <DataTable headers={["Who", "What", "Flags", "Approved by", "When", "Lasted", "Why"]}>
            {review.grants.map((g) => (
              <tr key={g.requestId} data-testid="review-row" className="align-top">
                <td className="px-4 py-2">
                  {g.requester}
                  {g.requesterOwners.length ? <span className="block text-xs text-slate-600">service identity of {g.requesterOwners.join(", ")}</span> : null}
                </td>
                <td className="px-4 py-2">
                  <Link href={`/requests/${g.requestId}`} className="text-indigo-700 hover:underline">
                    {g.targetTitle}
                  </Link>
                  <div className="text-xs text-slate-600">
                    {g.workflowId}
                    {g.role ? ` · ${g.role}` : ""}
                  </div>
                </td>
                <td className="min-w-36 px-4 py-2">
                  {g.sameParty ? (
                    <span className="mb-1 block rounded bg-rose-100 px-1.5 py-0.5 text-xs font-semibold text-rose-900">
                      approved within the requester&apos;s party
                    </span>
                  ) : null}
                  {g.breakGlass ? <span className="mb-1 block rounded bg-rose-100 px-1.5 py-0.5 text-xs font-semibold text-rose-900">break-glass</span> : null}
                  {g.breakGlass && !g.reviewedAt ? (
                    <span className="mb-1 block rounded bg-amber-100 px-1.5 py-0.5 text-xs font-semibold text-amber-900">not reviewed</span>
                  ) : null}
                  {g.noApproverComment ? (
                    <span className="block rounded bg-amber-100 px-1.5 py-0.5 text-xs font-semibold text-amber-900">no approver comment</span>
                  ) : null}
                </td>
                <td className="px-4 py-2">
                  {g.autoApprovedBy ? <span className="text-slate-600">policy rule {g.autoApprovedBy}</span> : null}
                  {g.approvedBy.map((a) => (
                    <div key={a.email}>
                      {a.email}
                      {a.owners.length ? <span className="block text-xs text-slate-600">service identity of {a.owners.join(", ")}</span> : null}
                      {a.comment ? <span className="block text-xs text-slate-600">“{a.comment}”</span> : null}
                    </div>
                  ))}
                  {g.breakGlass ? <div className="text-xs">reviewed by {g.reviewedBy ?? "nobody yet"}</div> : null}
                </td>
                <td className="px-4 py-2 whitespace-nowrap">
                  {formatTime(g.activatedAt)}
                  <div className="text-xs text-slate-600">{g.endedAt ? `to ${formatTime(g.endedAt)}` : "still active"}</div>
                </td>
                <td className="px-4 py-2 whitespace-nowrap">{formatDuration(g.lastedSeconds)}</td>
                <td className="max-w-xs px-4 py-2 text-slate-700">
                  {g.justification}
                  {g.ticket ? (
                    <span className="block text-xs" data-testid="review-ticket">
                      Ticket:{" "}
                      {g.ticketUrl ? (
                        <a href={g.ticketUrl} className="text-indigo-700 underline" target="_blank" rel="noreferrer noopener">
                          {g.ticket}
                        </a>
                      ) : (
                        g.ticket
                      )}
                    </span>
                  ) : null}
                </td>
              </tr>
            ))}
          </DataTable>
        </>
      ) : null}
    </div>
  );
}
