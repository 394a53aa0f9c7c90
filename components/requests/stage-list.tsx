import type { RequestView } from "@/lib/approvals/queries";

const BADGE = {
  passed: "bg-emerald-50 text-emerald-800 ring-emerald-300",
  current: "bg-amber-50 text-amber-800 ring-amber-300",
  waiting: "bg-slate-100 text-slate-700 ring-slate-300",
  closed: "bg-slate-100 text-slate-600 ring-slate-200",
};

/** The request's approval stages in order: who approved, and who still could. */
export function StageList({ stages }: { stages: RequestView["stageViews"] }) {
  return (
    <section aria-labelledby="stages" className="rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
      <h2 id="stages" className="mb-3 font-semibold">
        Approval stages
      </h2>
      <ol className="space-y-3">
        {stages.map((st) => (
          <li key={st.index} data-testid="stage" className="text-sm">
            <div className="flex items-center gap-2">
              <span className="font-semibold">
                {st.index + 1}. {st.name}
              </span>
              <span data-testid="stage-state" className={`rounded-full px-2 py-0.5 text-xs font-semibold ring-1 ring-inset ${BADGE[st.state]}`}>
                {st.state}
              </span>
            </div>
            <p className="text-slate-600">
              {st.oneFromEachGroup
                ? `One approver from each of: ${st.groups.join(", ")}`
                : `${st.required} approval${st.required === 1 ? "" : "s"} from: ${st.groups.join(", ")}`}
            </p>
            {st.approvedBy.length > 0 ? <p className="text-slate-700">Approved by {st.approvedBy.join(", ")}</p> : null}
            {st.state === "current" || st.state === "waiting" ? (
              <p className="text-slate-600" data-testid="stage-eligible">
                {st.eligible.length > 0 ? `Can approve: ${st.eligible.join(", ")}` : "Nobody who has signed in can approve this stage yet."}
              </p>
            ) : null}
          </li>
        ))}
      </ol>
    </section>
  );
}
