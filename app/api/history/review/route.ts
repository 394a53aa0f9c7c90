import { auditorOrRefusal, recordDownload, refuse } from "@/lib/history/downloads";
import { csvCell, csvCommentJson } from "@/lib/history/export";
import { accessReview, REVIEW_COLUMNS, reviewPeriodSchema, reviewRow } from "@/lib/history/review";
import { lastVerification } from "@/lib/audit/verify";

export const dynamic = "force-dynamic";

/** GET /api/history/review?from=YYYY-MM-DD&to=YYYY-MM-DD: the access review as CSV, for auditors and admins. */
export async function GET(request: Request): Promise<Response> {
  const auth = await auditorOrRefusal("the access review");
  if ("refusal" in auth) return auth.refusal;
  const { who } = auth;
  const params = new URL(request.url).searchParams;
  const parsed = reviewPeriodSchema.safeParse({ from: params.get("from") ?? "", to: params.get("to") ?? "" });
  if (!parsed.success) return refuse(400, parsed.error.issues.map((i) => `${String(i.path[0] ?? "period")}: ${i.message}`).join(" "));
  const review = await accessReview(parsed.data);
  const verification = await lastVerification();
  const period = { from: params.get("from"), to: params.get("to") };
  await recordDownload(request, who, "access_review.exported", { ...period, grants: review.grants.length });
  const header = {
    generatedAt: new Date().toISOString(),
    generatedBy: who.email,
    period,
    totals: review.totals,
    chain: verification
      ? {
          ok: verification.ok,
          verifiedAt: verification.finishedAt?.toISOString(),
          upToSeq: verification.lastSeq?.toString() ?? null,
          problem: verification.problem,
        }
      : { verified: false },
  };
  const lines = [`# Latchkey access review`, csvCommentJson(header), REVIEW_COLUMNS.join(",")];
  for (const g of review.grants) {
    const row = reviewRow(g);
    lines.push(REVIEW_COLUMNS.map((c) => csvCell(row[c])).join(","));
  }
  return new Response(`${lines.join("\r\n")}\r\n`, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="latchkey-access-review-${period.from}-to-${period.to}.csv"`,
      "cache-control": "no-store",
    },
  });
}
