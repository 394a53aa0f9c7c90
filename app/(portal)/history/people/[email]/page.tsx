import type { Metadata } from "next";
import Link from "next/link";
import { Alert } from "@/components/ui/alert";
import { DataTable } from "@/components/ui/data-table";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { StatusBadge } from "@/components/ui/status-badge";
import { personActivity } from "@/lib/history/person";
import { hasRole, requirePrincipal } from "@/lib/auth/session";

export const metadata: Metadata = { title: "Person" };

function Section({ id, title, count, children }: { id: string; title: string; count: number; children: React.ReactNode }) {
  return (
    <section aria-labelledby={id} className="space-y-3">
      <h2 id={id} className="text-lg font-semibold">
        {title} <span className="text-sm font-normal text-slate-600">({count})</span>
      </h2>
      {children}
    </section>
  );
}

export default async function PersonPage({ params }: { params: Promise<{ email: string }> }) {
  const who = await requirePrincipal();
  if (!hasRole(who, "auditor", "admin")) return <Alert tone="error">The audit history is open to auditors and admins only.</Alert>;
  const raw = (await params).email;
  let email = raw.toLowerCase();
  try {
    email = decodeURIComponent(raw).toLowerCase();
  } catch {
    // A stray "%": keep the segment as it came.
  }
  const activity = await personActivity(email);
  if (!activity) return <EmptyState title={`Latchkey has no record of ${email}`}>Check the spelling, or search the history.</EmptyState>;
  const { user, requested, held, decided, events, directoryChanges } = activity;
  const link = (id: string) => (
    <Link href={`/requests/${id}`} className="font-mono text-xs text-indigo-700 hover:underline">
      {id.slice(0, 10)}…
    </Link>
  );
  return (
    <div className="space-y-8">
      <div>
        <Link href="/history" className="text-sm text-slate-600 hover:underline">
          ← History
        </Link>
        <h1 className="text-2xl font-bold tracking-tight">{user.email}</h1>
        <p className="text-slate-600">
          {user.kind === "service" ? "Service identity" : "Person"}
          {user.active ? "" : " (deactivated)"} · groups {user.groups.join(", ") || "none"} · roles {user.roles.join(", ") || "none"} · last sign-in{" "}
          {formatTime(user.lastSignInAt)} ·{" "}
          <Link href={`/history?actor=${encodeURIComponent(user.email)}`} className="text-indigo-700 underline">
            all {events} events by them
          </Link>
        </p>
      </div>
      <Section id="held" title="Access held" count={held.length}>
        {held.length === 0 ? (
          <p className="text-sm text-slate-600">No grant was ever active.</p>
        ) : (
          <DataTable headers={["Target", "From", "To", "Status", "Approved by", "Ended because", "Request"]}>
            {held.map((r) => (
              <tr key={r.id} data-testid="held-row">
                <td className="px-4 py-2">
                  {r.targetTitle}
                  {r.breakGlass ? <span className="ml-2 rounded bg-rose-100 px-1.5 py-0.5 text-xs font-semibold text-rose-900">break-glass</span> : null}
                </td>
                <td className="px-4 py-2 whitespace-nowrap">{formatTime(r.activatedAt)}</td>
                <td className="px-4 py-2 whitespace-nowrap">{r.endedAt ? formatTime(r.endedAt) : `until ${formatTime(r.expiresAt)}`}</td>
                <td className="px-4 py-2">
                  <StatusBadge status={r.status} />
                </td>
                <td className="px-4 py-2">
                  {r.autoApprovedBy
                    ? `rule ${r.autoApprovedBy}`
                    : r.decisions
                        .filter((d) => d.decision === "approve")
                        .map((d) => d.approver.email)
                        .join(", ") || "—"}
                </td>
                <td className="px-4 py-2 text-slate-700">{r.endedBecause ?? "—"}</td>
                <td className="px-4 py-2">{link(r.id)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </Section>
      <Section id="directory" title="Directory changes" count={directoryChanges.length}>
        {directoryChanges.length === 0 ? (
          <p className="text-sm text-slate-600">The directory changed nothing since the first sign-in.</p>
        ) : (
          <DataTable headers={["When", "From", "Groups added", "Groups removed", "Account", "Why (as recorded on each grant it ended)"]}>
            {directoryChanges.map((c) => (
              <tr key={c.id} data-testid="directory-row">
                <td className="px-4 py-2 whitespace-nowrap">{formatTime(c.occurredAt)}</td>
                <td className="px-4 py-2">{c.source === "admin" ? `offboarding by ${c.by}` : c.source}</td>
                <td className="px-4 py-2">{c.added.join(", ") || "—"}</td>
                <td className="px-4 py-2">{c.removed.join(", ") || "—"}</td>
                <td className="px-4 py-2">{c.deactivated ? "deactivated" : c.reactivated ? "reactivated" : "—"}</td>
                <td className="px-4 py-2 text-slate-700">{c.reason}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </Section>
      <Section id="requested" title="Requested" count={requested.length}>
        {requested.length === 0 ? (
          <p className="text-sm text-slate-600">No requests.</p>
        ) : (
          <DataTable headers={["When", "Target", "Status", "Why", "Request"]}>
            {requested.map((r) => (
              <tr key={r.id} data-testid="requested-row">
                <td className="px-4 py-2 whitespace-nowrap">{formatTime(r.createdAt)}</td>
                <td className="px-4 py-2">{r.targetTitle}</td>
                <td className="px-4 py-2">
                  <StatusBadge status={r.status} />
                </td>
                <td className="max-w-md px-4 py-2 text-slate-700">{r.justification}</td>
                <td className="px-4 py-2">{link(r.id)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </Section>
      <Section id="decided" title="Approved or rejected" count={decided.length}>
        {decided.length === 0 ? (
          <p className="text-sm text-slate-600">No decisions.</p>
        ) : (
          <DataTable headers={["When", "Decision", "For", "Target", "Comment", "Request"]}>
            {decided.map((d) => (
              <tr key={`${d.request.id}-${d.createdAt.toISOString()}`} data-testid="decided-row">
                <td className="px-4 py-2 whitespace-nowrap">{formatTime(d.createdAt)}</td>
                <td className="px-4 py-2">{d.decision === "approve" ? "approved" : "rejected"}</td>
                <td className="px-4 py-2">{d.request.requester.email}</td>
                <td className="px-4 py-2">{d.request.targetTitle}</td>
                <td className="max-w-md px-4 py-2 text-slate-700">{d.comment || <span className="text-amber-700">no comment</span>}</td>
                <td className="px-4 py-2">{link(d.request.id)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </Section>
    </div>
  );
}
