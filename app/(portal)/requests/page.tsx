import type { Metadata } from "next";
import Link from "next/link";
import { RequestTable } from "@/components/requests/request-table";
import { EmptyState } from "@/components/ui/empty-state";
import { LiveRefresh } from "@/components/requests/live-refresh";
import { myRequestsVersion } from "@/lib/approvals/live";
import { listMyRequests } from "@/lib/approvals/queries";
import { requirePrincipal } from "@/lib/auth/session";

export const metadata: Metadata = { title: "My requests" };

export default async function MyRequestsPage() {
  const who = await requirePrincipal();
  // Version first: a change made while the list is read makes it refresh once more, never miss it.
  const { version } = await myRequestsVersion(who);
  const rows = await listMyRequests(who);
  return (
    <div>
      <LiveRefresh url="/api/live/my-requests" version={version} />
      <h1 className="mb-6 text-2xl font-bold tracking-tight">My requests</h1>
      {rows.length === 0 ? (
        <EmptyState title="No requests yet">
          Start from the{" "}
          <Link href="/catalog" className="text-indigo-700 underline">
            catalog
          </Link>
          .
        </EmptyState>
      ) : (
        <RequestTable rows={rows} />
      )}
    </div>
  );
}
