"use client";

import { useQuery } from "@tanstack/react-query";
import { Alert } from "../ui/alert";
import { EmptyState } from "../ui/empty-state";
import { RequestTable, type RequestRow } from "./request-table";

async function fetchInbox(): Promise<RequestRow[]> {
  const res = await fetch("/api/inbox", { cache: "no-store" });
  const body = (await res.json()) as { requests?: RequestRow[]; error?: string };
  if (!res.ok) throw new Error(body.error ?? `The inbox could not be loaded (${res.status}).`);
  return body.requests ?? [];
}

/** The approvals inbox; refreshes by itself every few seconds and when the tab regains focus. */
export function Inbox({ initial }: { initial: RequestRow[] }) {
  const { data, error, isFetching, dataUpdatedAt } = useQuery({
    queryKey: ["inbox"],
    queryFn: fetchInbox,
    initialData: initial,
    refetchInterval: 3_000,
    refetchOnWindowFocus: true,
  });
  return (
    <div className="space-y-3">
      <p className="text-xs text-slate-500" aria-live="polite">
        {isFetching ? "Refreshing…" : `Updated ${new Date(dataUpdatedAt).toLocaleTimeString()}`} · refreshes automatically
      </p>
      {error ? <Alert tone="error">{(error as Error).message} Showing the last list we had.</Alert> : null}
      {data.length === 0 ? <EmptyState title="Nothing waiting for you">New requests you can approve appear here by themselves.</EmptyState> : <RequestTable rows={data} showRequester />}
    </div>
  );
}
