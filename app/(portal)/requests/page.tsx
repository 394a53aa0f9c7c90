import type { Metadata } from "next";
import Link from "next/link";
import { RequestTable } from "@/components/requests/request-table";
import { EmptyState } from "@/components/ui/empty-state";
import { listMyRequests } from "@/lib/approvals/queries";
import { requirePrincipal } from "@/lib/auth/session";

export const metadata: Metadata = { title: "My requests" };

export default async function MyRequestsPage() {
  const who = await requirePrincipal();
  const rows = await listMyRequests(who);
  return (
    <div>
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
