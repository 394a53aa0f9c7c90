import type { Metadata } from "next";
import { Inbox } from "@/components/requests/inbox";
import { Alert } from "@/components/ui/alert";
import { RequestTable } from "@/components/requests/request-table";
import { inboxFor, reviewsFor } from "@/lib/approvals/queries";
import { hasRole, requirePrincipal } from "@/lib/auth/session";

export const metadata: Metadata = { title: "Approvals" };

export default async function ApprovalsPage() {
  const who = await requirePrincipal();
  return (
    <div>
      <h1 className="mb-1 text-2xl font-bold tracking-tight">Approvals</h1>
      <p className="mb-6 text-slate-600">Requests waiting for your decision, oldest first.</p>
      {hasRole(who, "approver") ? (
        <>
          <Inbox initial={JSON.parse(JSON.stringify(await inboxFor(who)))} />
          <BreakGlassReviews who={who} />
        </>
      ) : (
        <Alert tone="info">Your role does not include approving requests.</Alert>
      )}
    </div>
  );
}

async function BreakGlassReviews({ who }: { who: Awaited<ReturnType<typeof requirePrincipal>> }) {
  const reviews = await reviewsFor(who);
  if (reviews.length === 0) return null;
  return (
    <section className="mt-10">
      <h2 className="mb-1 text-lg font-semibold text-rose-800">Break-glass grants awaiting review</h2>
      <p className="mb-3 text-sm text-slate-600">Emergency access opened without approval. Open each one and sign it off.</p>
      <RequestTable rows={reviews} showRequester />
    </section>
  );
}
