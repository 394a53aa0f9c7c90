import type { RequestStatus } from "@prisma/client";

const STYLES: Record<RequestStatus, string> = {
  pending: "bg-amber-50 text-amber-800 ring-amber-300",
  approved: "bg-sky-50 text-sky-800 ring-sky-300",
  executing: "bg-sky-50 text-sky-800 ring-sky-300",
  active: "bg-emerald-50 text-emerald-800 ring-emerald-300",
  completed: "bg-emerald-50 text-emerald-800 ring-emerald-300",
  expired: "bg-slate-100 text-slate-700 ring-slate-300",
  revoked: "bg-slate-100 text-slate-700 ring-slate-300",
  rejected: "bg-rose-50 text-rose-800 ring-rose-300",
  cancelled: "bg-slate-100 text-slate-700 ring-slate-300",
  failed: "bg-rose-50 text-rose-800 ring-rose-300",
};

export function StatusBadge({ status }: { status: RequestStatus }) {
  return (
    <span data-testid="status" className={`inline-flex items-center rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset ${STYLES[status]}`}>
      {status}
    </span>
  );
}
