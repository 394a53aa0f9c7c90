import { actorOf } from "@/lib/approvals/engine";
import { contextOf, withAuditContext } from "@/lib/audit/context";
import { csvCell } from "@/lib/audit/export";
import { recordEvent } from "@/lib/audit/record";
import { accessReview, REVIEW_COLUMNS, reviewPeriodSchema, reviewRow } from "@/lib/audit/review";
import { lastVerification } from "@/lib/audit/verify";
import { currentPrincipal } from "@/lib/auth/session";
import { db } from "@/lib/db";

export const dynamic = "force-dynamic";

function refuse(status: number, message: string) {
  return new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" } });
}

/** GET /api/history/review?from=YYYY-MM-DD&to=YYYY-MM-DD: the access review as CSV, for auditors and admins. */
export async function GET(request: Request): Promise<Response> {
  const who = await currentPrincipal();
  if (!who) return refuse(401, "Sign in to download the access review.");
  if (!who.roles.includes("auditor") && !who.roles.includes("admin")) return refuse(403, "The access review is open to auditors and admins only.");
  const params = new URL(request.url).searchParams;
  const parsed = reviewPeriodSchema.safeParse({ from: params.get("from") ?? "", to: params.get("to") ?? "" });
  if (!parsed.success) return refuse(400, parsed.error.issues.map((i) => `${String(i.path[0] ?? "period")}: ${i.message}`).join(" "));
  const review = await accessReview(parsed.data);
  const verification = await lastVerification();
  const period = { from: params.get("from"), to: params.get("to") };
  await withAuditContext(contextOf(request.headers, "GET /api/history/review"), () =>
    db.$transaction((tx) => recordEvent(tx, { actor: actorOf(who), action: "access_review.exported", data: { ...period, grants: review.grants.length } })),
  );
  const header = {
    generatedAt: new Date().toISOString(),
    generatedBy: who.email,
    period,
    totals: review.totals,
    chain: verification ? { ok: verification.ok, verifiedAt: verification.finishedAt?.toISOString(), upToSeq: verification.lastSeq?.toString() ?? null, problem: verification.problem } : { verified: false },
  };
  const lines = [`# Latchkey access review`, `# ${JSON.stringify(header)}`, REVIEW_COLUMNS.join(",")];
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
