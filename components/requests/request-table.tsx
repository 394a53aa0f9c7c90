import type { RequestStatus } from "@prisma/client";
import Link from "next/link";
import type { RequestField } from "@/lib/workflows/request-fields";
import { formatMinutes, formatTime } from "../ui/format";
import { StatusBadge } from "../ui/status-badge";
import { DataTable } from "../ui/data-table";

export interface RequestRow {
  id: string;
  targetTitle: string;
  workflowTitle: string;
  fields: RequestField[];
  status: RequestStatus;
  input: unknown;
  durationSeconds: number;
  createdAt: Date | string;
  justification: string;
  requester: { email: string };
  breakGlass?: boolean;
}

export function RequestTable({ rows, showRequester }: { rows: RequestRow[]; showRequester?: boolean }) {
  return (
    <DataTable headers={["Target", ...(showRequester ? ["Requester"] : []), "Workflow", "Duration", "Requested", "Status"]}>
      {rows.map((r) => (
        <tr key={r.id} data-testid="request-row" className="hover:bg-slate-50">
          <td className="px-4 py-2">
            <Link href={`/requests/${r.id}`} className="font-medium text-indigo-700 underline-offset-2 hover:underline">
              {r.targetTitle}
            </Link>
            {r.breakGlass ? <span className="ml-2 rounded bg-rose-700 px-1.5 py-0.5 text-xs font-bold text-white">BREAK-GLASS</span> : null}
            <p className="max-w-xs truncate text-xs text-slate-600">{r.justification}</p>
          </td>
          {showRequester ? <td className="px-4 py-2">{r.requester.email}</td> : null}
          <td className="px-4 py-2" data-testid="request-workflow">
            {r.workflowTitle}
          </td>
          <td className="px-4 py-2">{r.durationSeconds ? formatMinutes(r.durationSeconds) : "one-off"}</td>
          <td className="px-4 py-2 whitespace-nowrap">{formatTime(r.createdAt)}</td>
          <td className="px-4 py-2">
            <StatusBadge status={r.status} />
          </td>
        </tr>
      ))}
    </DataTable>
  );
}
