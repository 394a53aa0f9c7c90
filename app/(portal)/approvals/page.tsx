import type { Metadata } from "next";
import { Inbox } from "@/components/requests/inbox";
import { Alert } from "@/components/ui/alert";
import { inboxFor } from "@/lib/approvals/queries";
import { hasRole, requirePrincipal } from "@/lib/auth/session";

export const metadata: Metadata = { title: "Approvals" };

export default async function ApprovalsPage() {
  const who = await requirePrincipal();
  return (
    <div>
      <h1 className="mb-1 text-2xl font-bold tracking-tight">Approvals</h1>
      <p className="mb-6 text-slate-600">Requests waiting for your decision, oldest first.</p>
      {hasRole(who, "approver") ? (
        <Inbox initial={JSON.parse(JSON.stringify(await inboxFor(who)))} />
      ) : (
        <Alert tone="info">Your role does not include approving requests.</Alert>
      )}
    </div>
  );
}
