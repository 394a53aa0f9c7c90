"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useMemo, useState } from "react";
import { decideAction } from "@/lib/actions/requests";
import { Alert } from "../ui/alert";
import { EmptyState } from "../ui/empty-state";
import { formatMinutes, formatTime } from "../ui/format";
import { useHydrated } from "../ui/use-hydrated";
import { inputClass } from "../ui/field";
import { RequestFields } from "./request-fields";
import type { RequestRow } from "./request-table";
import { DataTable } from "../ui/data-table";

export type InboxRow = RequestRow & { workflowId: string; targetId: string };

/** The server no longer lets this viewer see the inbox (the session ended or the approver role was taken away). */
class InboxRefused extends Error {}

async function fetchInbox(): Promise<InboxRow[]> {
  const res = await fetch("/api/inbox", { cache: "no-store" });
  const body = (await res.json().catch(() => ({}))) as { requests?: InboxRow[]; error?: string };
  if (res.status === 401 || res.status === 403) throw new InboxRefused(body.error ?? "You can no longer see this inbox.");
  if (!res.ok) throw new Error(body.error ?? `The inbox could not be loaded (${res.status}).`);
  return body.requests ?? [];
}

const KEYS = "j/↓ next · k/↑ previous · Enter open · a approve · r reject";

/**
 * The approvals inbox: refreshes by itself, filters by workflow and target, and works
 * from the keyboard. The server still decides who may approve what.
 */
export function Inbox({ initial }: { initial: InboxRow[] }) {
  const router = useRouter();
  const hydrated = useHydrated();
  const queryClient = useQueryClient();
  const { data, error, isFetching, dataUpdatedAt } = useQuery({
    queryKey: ["inbox"],
    queryFn: fetchInbox,
    initialData: initial,
    // Once refused, stop asking: the page is rendered again from the server, which says why.
    refetchInterval: (query) => (query.state.error instanceof InboxRefused ? false : 3_000),
    refetchOnWindowFocus: true,
    retry: (count, err) => !(err instanceof InboxRefused) && count < 3,
  });
  const refused = error instanceof InboxRefused;
  useEffect(() => {
    if (refused) router.refresh();
  }, [refused, router]);
  const [workflow, setWorkflow] = useState("");
  const [target, setTarget] = useState("");
  const [selected, setSelected] = useState(0);
  const [message, setMessage] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const rows = useMemo(() => data.filter((r) => (!workflow || r.workflowId === workflow) && (!target || r.targetId === target)), [data, workflow, target]);
  const current = rows[Math.min(selected, rows.length - 1)];

  useEffect(() => {
    async function decide(row: InboxRow, decision: "approve" | "reject") {
      const comment = decision === "reject" ? window.prompt(`Why do you reject ${row.requester.email}'s request for ${row.targetTitle}?`) : "";
      if (comment === null) return;
      const result = await decideAction({ requestId: row.id, decision, comment });
      setMessage(
        result.ok
          ? {
              tone: "success",
              text: `${decision === "approve" ? "Approved" : "Rejected"}: ${row.targetTitle} for ${row.requester.email} (now ${result.data.status}).`,
            }
          : { tone: "error", text: result.error },
      );
      await queryClient.invalidateQueries({ queryKey: ["inbox"] });
    }
    function onKey(event: KeyboardEvent) {
      const el = event.target as HTMLElement;
      if (["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) || event.metaKey || event.ctrlKey || event.altKey) return;
      if (event.key === "j" || event.key === "ArrowDown") setSelected((s) => Math.min(s + 1, Math.max(rows.length - 1, 0)));
      else if (event.key === "k" || event.key === "ArrowUp") setSelected((s) => Math.max(s - 1, 0));
      else if ((event.key === "Enter" || event.key === "o") && current) router.push(`/requests/${current.id}`);
      else if (event.key === "a" && current) void decide(current, "approve");
      else if (event.key === "r" && current) void decide(current, "reject");
      else return;
      event.preventDefault();
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [rows, current, router, queryClient]);

  const workflows = [...new Map(data.map((r) => [r.workflowId, r.workflowTitle])).entries()].sort();
  const targets = [...new Map(data.map((r) => [r.targetId, r.targetTitle])).entries()].sort();
  return (
    <div className="space-y-3">
      <div className="flex flex-wrap items-end gap-3">
        <label className="text-sm font-semibold">
          Workflow
          <select aria-label="Filter by workflow" className={inputClass} value={workflow} onChange={(e) => setWorkflow(e.target.value)}>
            <option value="">all</option>
            {workflows.map(([id, title]) => (
              <option key={id} value={id}>
                {title}
              </option>
            ))}
          </select>
        </label>
        <label className="text-sm font-semibold">
          Target
          <select aria-label="Filter by target" className={inputClass} value={target} onChange={(e) => setTarget(e.target.value)}>
            <option value="">all</option>
            {targets.map(([id, title]) => (
              <option key={id} value={id}>
                {title}
              </option>
            ))}
          </select>
        </label>
        <p className="pb-2 text-xs text-slate-600" aria-live="polite">
          {isFetching ? "Refreshing…" : hydrated ? `Updated ${formatTime(new Date(dataUpdatedAt)).slice(11)}` : "Updated just now"} · refreshes automatically ·
          keys: {KEYS}
        </p>
      </div>
      {message ? <Alert tone={message.tone}>{message.text}</Alert> : null}
      {error ? <Alert tone="error">{(error as Error).message} Showing the last list we had.</Alert> : null}
      {rows.length === 0 ? (
        <EmptyState title={data.length === 0 ? "Nothing waiting for you" : "Nothing matches these filters"}>
          New requests you can approve appear here by themselves.
        </EmptyState>
      ) : (
        <DataTable headers={["Target", "Requester", "Workflow", "Duration", "Requested"]}>
          {rows.map((r) => (
            <tr
              key={r.id}
              data-testid="request-row"
              aria-selected={r.id === current?.id}
              className={r.id === current?.id ? "bg-indigo-50 outline outline-2 -outline-offset-2 outline-indigo-400" : "hover:bg-slate-50"}
              onClick={() => setSelected(rows.indexOf(r))}
            >
              <td className="px-4 py-2">
                <Link href={`/requests/${r.id}`} className="font-medium text-indigo-700 hover:underline">
                  {r.targetTitle}
                </Link>
                <p className="max-w-xs truncate text-xs text-slate-600">{r.justification}</p>
                <details className="mt-1 text-sm" data-testid="inbox-details">
                  <summary className="cursor-pointer text-xs font-medium text-slate-700">What is asked</summary>
                  <div className="mt-2 max-w-xl">
                    <RequestFields fields={r.fields} compact />
                  </div>
                </details>
              </td>
              <td className="px-4 py-2">{r.requester.email}</td>
              <td className="px-4 py-2">{r.workflowTitle}</td>
              <td className="px-4 py-2">{r.durationSeconds ? formatMinutes(r.durationSeconds) : "one-off"}</td>
              <td className="px-4 py-2 whitespace-nowrap">{formatTime(r.createdAt)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </div>
  );
}
