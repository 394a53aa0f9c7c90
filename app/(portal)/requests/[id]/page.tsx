import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { CredentialReveal, Countdown } from "@/components/requests/credential-reveal";
import { CancelButton, DecisionPanel, ExtendPanel, ReviewPanel, RevokeButton } from "@/components/requests/request-actions";
import { LiveRefresh } from "@/components/requests/live-refresh";
import { RequestFields } from "@/components/requests/request-fields";
import { StageList } from "@/components/requests/stage-list";
import { Timeline } from "@/components/requests/timeline";
import { Alert } from "@/components/ui/alert";
import { formatTime } from "@/components/ui/format";
import { StatusBadge } from "@/components/ui/status-badge";
import { requestVersion } from "@/lib/approvals/live";
import { getRequestView } from "@/lib/approvals/queries";
import { requirePrincipal } from "@/lib/auth/session";
import { DomainError } from "@/lib/errors";

export const metadata: Metadata = { title: "Request" };

export default async function RequestPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const who = await requirePrincipal();
  let view, version;
  try {
    // The version is read before the view: a change between the two makes the page refresh once more, never miss it.
    ({ version } = await requestVersion(who, id));
    view = await getRequestView(who, id);
  } catch (error) {
    if (error instanceof DomainError && error.code === "not_found") notFound();
    throw error;
  }
  const approvals = view.decisions.filter((d) => d.decision === "approve").length;
  return (
    <div className="grid gap-8 lg:grid-cols-[1fr_20rem]">
      <LiveRefresh url={`/api/live/requests/${view.id}`} version={version} />
      <div className="min-w-0 space-y-6">
        <div>
          <div className="flex flex-wrap items-center gap-3">
            <h1 className="text-2xl font-bold tracking-tight break-words" data-testid="request-title">
              {view.workflowTitle}: {view.targetTitle}
            </h1>
            <StatusBadge status={view.status} />
          </div>
          <p className="mt-1 text-sm text-slate-600">
            Requested by <strong>{view.requester.email}</strong> on {formatTime(view.createdAt)}
          </p>
        </div>
        <section aria-labelledby="asked-heading" className="space-y-4 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
          <h2 id="asked-heading" className="font-semibold">
            What is asked
          </h2>
          <RequestFields fields={view.fields} />
          <dl className="grid grid-cols-2 gap-4 border-t border-slate-200 pt-4 text-sm sm:grid-cols-3">
            <div>
              <dt className="text-slate-600">Kind</dt>
              <dd className="font-semibold">{view.durationSeconds ? "access that expires by itself" : "one-off action"}</dd>
            </div>
            <div>
              <dt className="text-slate-600">Approved by</dt>
              <dd className="font-semibold">
                {view.breakGlass
                  ? "break-glass (self)"
                  : view.autoApprovedBy
                    ? `policy rule ${view.autoApprovedBy}`
                    : `${approvals} ${approvals === 1 ? "person" : "people"}`}
              </dd>
            </div>
            {view.ticketKey ? (
              <div>
                <dt className="text-slate-600">Ticket</dt>
                <dd className="font-semibold" data-testid="ticket">
                  {view.ticketUrl ? (
                    <a href={view.ticketUrl} className="underline" target="_blank" rel="noreferrer noopener">
                      {view.ticketKey}
                    </a>
                  ) : (
                    view.ticketKey
                  )}
                </dd>
              </div>
            ) : null}
            <div>
              <dt className="text-slate-600">Pending until</dt>
              <dd className="font-semibold">{view.status === "pending" ? formatTime(view.pendingExpiresAt) : "—"}</dd>
            </div>
          </dl>
        </section>

        {view.outsidePreview ? (
          <section className="rounded-lg border border-slate-200 bg-white p-5 text-sm shadow-sm" data-testid="outside-preview">
            <h2 className="font-semibold">What this sends to {view.outsidePreview.system}</h2>
            <ol className="mt-2 list-decimal space-y-2 pl-5">
              {view.outsidePreview.calls.map((call, i) => (
                <li key={i} data-testid="outside-call">
                  <code>
                    {call.method} {call.path}
                  </code>
                  {call.when ? <span className="text-slate-600"> ({call.when})</span> : null}
                  {call.body !== undefined ? (
                    <pre className="mt-1 overflow-x-auto rounded bg-slate-50 p-2 text-xs">{JSON.stringify(call.body, null, 2)}</pre>
                  ) : null}
                </li>
              ))}
            </ol>
            {view.outsidePreview.notes.map((note) => (
              <p key={note} className="mt-2 text-slate-600">
                {note}
              </p>
            ))}
          </section>
        ) : null}

        {view.extension ? (
          <Alert tone="info">
            <span data-testid="extension">
              This request extends{" "}
              <Link href={`/requests/${view.extension.id}`} className="font-semibold underline">
                an earlier grant
              </Link>{" "}
              ({view.extension.status}
              {view.extension.expiresAt ? `, ending ${formatTime(view.extension.expiresAt)}` : ""}); once approved it replaces that grant
              {view.extension.changes.length ? ". Changes:" : " with the same settings, for a new period from approval."}
            </span>
            {view.extension.changes.length ? (
              <ul className="mt-1 list-disc pl-5" data-testid="extension-changes">
                {view.extension.changes.map((c) => (
                  <li key={c.label}>
                    {c.label}: {c.from} → <strong>{c.to}</strong>
                  </li>
                ))}
              </ul>
            ) : null}
          </Alert>
        ) : null}
        {view.breakGlass ? (
          <Alert tone="error">
            <strong>Break-glass access.</strong> Reason: “{view.breakGlassReason}”.{" "}
            {view.reviewedAt ? `Reviewed ${formatTime(view.reviewedAt)}: “${view.reviewComment}”.` : "Awaiting review by an approver."}
          </Alert>
        ) : null}
        {view.viewer.canReview ? <ReviewPanel requestId={view.id} /> : null}

        <StageList stages={view.stageViews} />

        {view.status === "executing" ? (
          <Alert tone="info">
            <span data-testid="executing">Carrying out the approved request on {view.targetTitle}…</span>
            {view.externalRef ? (
              <span className="mt-1 block">
                {view.externalRef}: <strong data-testid="external-state">{view.externalState ?? "starting"}</strong> (this page follows it)
              </span>
            ) : null}
            {view.failureReason ? <span className="mt-1 block text-rose-800">{view.failureReason}</span> : null}
          </Alert>
        ) : null}
        {view.status === "failed" && view.failureReason ? <Alert tone="error">Failed: {view.failureReason}</Alert> : null}
        {view.status === "completed" ? (
          <Alert tone="success">Completed{view.externalRef ? `: ${view.externalRef} ended ${view.externalState}` : ""}.</Alert>
        ) : null}
        {view.status === "active" && view.expiresAt ? (
          <section className="space-y-3 rounded-lg border border-emerald-200 bg-white p-5 shadow-sm">
            <h2 className="font-semibold">
              Access is active until {formatTime(view.expiresAt)} (<Countdown expiresAt={view.expiresAt.toISOString()} />)
            </h2>
            {view.viewer.isRequester && (view.credential || view.secretRevealable || view.secretRevealedAt) ? (
              <CredentialReveal requestId={view.id} revealable={Boolean(view.credential?.revealable || view.secretRevealable)} />
            ) : null}
            {!view.credential && view.secretRevealedAt ? (
              <p className="text-xs text-slate-600">Login details shown to their owner {formatTime(view.secretRevealedAt)}.</p>
            ) : null}
            {view.credential ? (
              <p className="text-xs text-slate-600" data-testid="credential-meta">
                Credential <code>{view.credential.id}</code> · key <code>{view.credential.kid}</code> · issued {formatTime(view.credential.issuedAt)}
                {view.credential.revealedAt
                  ? ` · shown to its owner ${formatTime(view.credential.revealedAt)}`
                  : view.credential.revealable
                    ? " · not shown yet"
                    : ""}
              </p>
            ) : null}
            <div className="flex flex-wrap items-start gap-3">
              {view.viewer.canRevoke ? <RevokeButton requestId={view.id} /> : null}
              {view.viewer.isRequester && !view.breakGlass ? <ExtendPanel requestId={view.id} /> : null}
            </div>
          </section>
        ) : null}

        {view.viewer.canDecide ? <DecisionPanel requestId={view.id} /> : null}
        {view.status === "pending" && !view.viewer.canDecide && view.viewer.decisionRefusal && !view.viewer.isRequester ? (
          <Alert tone="info">{view.viewer.decisionRefusal}</Alert>
        ) : null}
        {view.status === "pending" && view.viewer.isRequester ? (
          <Alert tone="info">Waiting for approval from {view.currentStageGroups.join(" or ")}. You cannot approve your own request.</Alert>
        ) : null}
        {view.viewer.canCancel ? <CancelButton requestId={view.id} /> : null}

        {view.decisions.length > 0 ? (
          <section>
            <h2 className="mb-2 font-semibold">Decisions</h2>
            <ul className="space-y-2">
              {view.decisions.map((d) => (
                <li key={d.id} className="rounded-md border border-slate-200 bg-white p-3 text-sm">
                  <span className={d.decision === "approve" ? "font-semibold text-emerald-700" : "font-semibold text-rose-700"}>
                    {d.decision === "approve" ? "Approved" : "Rejected"}
                  </span>{" "}
                  by {d.approver.email} · {formatTime(d.createdAt)}
                  {d.comment ? <p className="mt-1 text-slate-700">“{d.comment}”</p> : null}
                </li>
              ))}
            </ul>
          </section>
        ) : null}
      </div>
      <aside>
        <h2 className="mb-3 font-semibold">Timeline</h2>
        <Timeline events={view.timeline} />
      </aside>
    </div>
  );
}
