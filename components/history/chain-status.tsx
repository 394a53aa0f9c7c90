import { lastVerification } from "@/lib/audit/verify";
import { formatTime } from "../ui/format";

/** Events the walk found committed but not yet linked into the chain (normally those of the last moments). */
function unchainedNote(last: { unchainedEvents: number; oldestUnchainedAt: Date | null }): string {
  if (last.unchainedEvents === 0) return "";
  return ` ${last.unchainedEvents} more, each sealed on its own, were waiting to be chained (the oldest recorded ${formatTime(last.oldestUnchainedAt)}).`;
}

/** The last walk of the audit chain, in words: intact up to an event, broken at one, or not checkable with the keys held. */
export async function ChainStatus() {
  const last = await lastVerification();
  if (!last) {
    return (
      <p data-testid="chain-status" className="text-sm text-slate-600">
        The audit chain has not been verified yet. It is verified daily; an admin can verify it now on Admin → Audit.
      </p>
    );
  }
  if (last.ok) {
    return (
      <p
        data-testid="chain-status"
        role="status"
        className="inline-block rounded-md border border-emerald-200 bg-emerald-50 px-3 py-1.5 text-sm text-emerald-900"
      >
        ✓ Audit chain intact: {last.eventsChecked} events verified up to #{last.lastSeq?.toString()} on {formatTime(last.finishedAt)}.
        {last.legacyEvents > 0
          ? last.anchoredEvents === last.legacyEvents
            ? ` ${last.legacyEvents} of them, recorded before the chain existed, are anchored by a checkpoint rather than chained.`
            : ` ${last.legacyEvents - last.anchoredEvents} of them, recorded before the chain existed, are neither chained nor anchored yet (npm run audit:anchor).`
          : ""}
        {unchainedNote(last)}
      </p>
    );
  }
  if (last.outcome === "unverifiable") {
    return (
      <p data-testid="chain-status" role="status" className="inline-block rounded-md border border-amber-300 bg-amber-50 px-3 py-1.5 text-sm text-amber-900">
        ? Audit chain cannot be fully checked (verified {formatTime(last.finishedAt)}): no alteration found, but {last.problem}
      </p>
    );
  }
  return (
    <p
      data-testid="chain-status"
      role="alert"
      className="inline-block rounded-md border border-rose-300 bg-rose-50 px-3 py-1.5 text-sm font-medium text-rose-900"
    >
      ✗ Audit chain BROKEN at {last.firstBadSeq === null ? "an event not yet chained" : `event #${last.firstBadSeq}`} (verified {formatTime(last.finishedAt)}):{" "}
      {last.problem}
    </p>
  );
}
