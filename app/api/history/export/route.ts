import { auditorOrRefusal, recordDownload, refuse } from "@/lib/history/downloads";
import { exportStream, type ExportFormat } from "@/lib/history/export";
import { describeFilters, filtersOf, historyFiltersSchema } from "@/lib/history/filters";
import { startExport } from "@/lib/history/rows";
import { lastVerification } from "@/lib/audit/verify";

export const dynamic = "force-dynamic";

/**
 * GET /api/history/export?format=csv|jsonl&<history filters>: the filtered history,
 * streamed, for auditors and admins. Each export is itself an audit event.
 */
export async function GET(request: Request): Promise<Response> {
  const auth = await auditorOrRefusal("the history");
  if ("refusal" in auth) return auth.refusal;
  const { who } = auth;
  const params = Object.fromEntries([...new URL(request.url).searchParams].filter(([, v]) => v !== ""));
  const { format = "csv", ...rest } = params;
  if (format !== "csv" && format !== "jsonl") return refuse(400, "format must be csv or jsonl.");
  const parsed = historyFiltersSchema.safeParse(rest);
  if (!parsed.success) return refuse(400, parsed.error.issues.map((i) => `${String(i.path[0] ?? "filter")}: ${i.message}`).join(" "));
  const filters = filtersOf(parsed.data);
  const started = startExport();
  if ("refusal" in started) return started.refusal;
  const { release } = started;
  let verification: Awaited<ReturnType<typeof lastVerification>>;
  try {
    await recordDownload(request, who, "history.exported", { format, filters: describeFilters(filters) });
    verification = await lastVerification();
  } catch (error) {
    release();
    throw error;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return new Response(exportStream(format as ExportFormat, filters, who.email, verification, parsed.data.sort, release), {
    headers: {
      "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
      "content-disposition": `attachment; filename="latchkey-history-${stamp}.${format}"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
