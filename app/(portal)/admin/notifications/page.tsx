import type { Metadata } from "next";
import Link from "next/link";
import { Alert } from "@/components/ui/alert";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { policy } from "@/lib/policy/current";
import { deliveryCounts, failedDeliveries } from "@/lib/notifications/admin";
import { DataTable } from "@/components/ui/data-table";

export const metadata: Metadata = { title: "Notifications" };

export default async function NotificationsPage() {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">Notification deliveries are open to admins only.</Alert>;
  const [counts, failed] = await Promise.all([deliveryCounts(), failedDeliveries()]);
  // A channel is on when the variable holding its URL is set (lib/notifications/outbox.ts sends to those only).
  const channels = policy().notifications.map((c) => ({ name: c.name, kind: c.kind, urlEnv: c.urlEnv, on: Boolean(process.env[c.urlEnv]) }));
  return (
    <div>
      <h1 className="mb-1 text-2xl font-bold tracking-tight">Notifications</h1>
      <p className="mb-6 text-slate-600">
        Deliveries to the channels in the policy. Delivered: {counts.delivered ?? 0} · waiting or retrying: {counts.pending ?? 0} · failed: {counts.failed ?? 0}
        . Requests never wait for notifications.
      </p>
      <section aria-labelledby="channels-heading" className="mb-6">
        <h2 id="channels-heading" className="mb-2 font-semibold">
          Channels
        </h2>
        {channels.length > 0 && channels.every((c) => !c.on) ? (
          <div className="mb-2">
            <Alert tone="warning">Every channel is off: no notification is being sent. Set the variables below to turn them on.</Alert>
          </div>
        ) : null}
        <ul className="space-y-1 text-sm" data-testid="channels">
          {channels.length === 0 ? <li>The policy names no notification channel.</li> : null}
          {channels.map((c) => (
            <li key={c.name}>
              <strong>{c.name}</strong> ({c.kind}):{" "}
              {c.on ? (
                "on"
              ) : (
                <>
                  off, because <code className="font-mono">{c.urlEnv}</code> is not set
                </>
              )}
            </li>
          ))}
        </ul>
      </section>
      {failed.length === 0 ? (
        <EmptyState title="No failed deliveries" />
      ) : (
        <DataTable headers={["Queued", "Channel", "Event", "Attempts", "Last error", "Request"]}>
          {failed.map((d) => (
            <tr key={d.id} data-testid="failed-delivery">
              <td className="px-4 py-2 whitespace-nowrap">{formatTime(d.createdAt)}</td>
              <td className="px-4 py-2">{d.channel}</td>
              <td className="px-4 py-2">{d.event}</td>
              <td className="px-4 py-2">{d.attempts}</td>
              <td className="px-4 py-2 text-rose-700">{d.lastError}</td>
              <td className="px-4 py-2">
                {d.requestId ? (
                  <Link href={`/requests/${d.requestId}`} className="font-mono text-xs text-indigo-700 hover:underline">
                    {d.requestId.slice(0, 10)}…
                  </Link>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </div>
  );
}
