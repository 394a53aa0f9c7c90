import { db } from "@/lib/db";
import { recordEvent } from "@/lib/audit/record";
import { contextOf, withAuditContext } from "@/lib/audit/context";
import { exportStream, type ExportFormat } from "@/lib/audit/export";
import { describeFilters, filtersOf, historyFiltersSchema } from "@/lib/audit/history-filters";
import { lastVerification } from "@/lib/audit/verify";
import { actorOf } from "@/lib/approvals/engine";
import { currentPrincipal } from "@/lib/auth/session";

export const dynamic = "force-dynamic";

function refuse(status: number, message: string) {
  return new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" } });
}

/**
 * GET /api/history/export?format=csv|jsonl&<history filters>: the filtered history,
 * streamed, for auditors and admins. Each export is itself an audit event.
 */
export async function GET(request: Request): Promise<Response> {
  const who = await currentPrincipal();
  if (!who) return refuse(401, "Sign in to export the history.");
  if (!who.roles.includes("auditor") && !who.roles.includes("admin")) return refuse(403, "Exports are open to auditors and admins only.");
  const params = Object.fromEntries([...new URL(request.url).searchParams].filter(([, v]) => v !== ""));
  const { format = "csv", ...rest } = params;
  if (format !== "csv" && format !== "jsonl") return refuse(400, "format must be csv or jsonl.");
  const parsed = historyFiltersSchema.safeParse(rest);
  if (!parsed.success) return refuse(400, parsed.error.issues.map((i) => `${String(i.path[0] ?? "filter")}: ${i.message}`).join(" "));
  const filters = filtersOf(parsed.data);
  await withAuditContext(contextOf(request.headers, "GET /api/history/export"), () =>
    db.$transaction((tx) => recordEvent(tx, { actor: actorOf(who), action: "history.exported", data: { format, filters: describeFilters(filters) } })),
  );
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return new Response(exportStream(format as ExportFormat, filters, who.email, await lastVerification(), parsed.data.sort), {
    headers: {
      "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
      "content-disposition": `attachment; filename="latchkey-history-${stamp}.${format}"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
