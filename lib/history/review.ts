import "server-only";
import { z } from "zod";
import { db } from "../db";
import { policy } from "../policy/current";
import { day } from "./filters";

/**
 * The access review for a period: every grant that was active in it, who approved it and
 * why, how long it lasted, break-glass use, and approvals given without a comment. This
 * is the report an ISO 27001 or SOC 2 reviewer asks for.
 */

export const reviewPeriodSchema = z
  .object({ from: day, to: day })
  // Zod runs these even when a day was refused (and so is still text): compare only days.
  .refine((p) => !(p.from instanceof Date && p.to instanceof Date) || p.from <= p.to, { message: "The start date is after the end date.", path: ["to"] })
  .refine((p) => !(p.from instanceof Date && p.to instanceof Date) || p.to.getTime() - p.from.getTime() <= 366 * 86_400_000, {
    message: "A review covers a year at most.",
    path: ["to"],
  })
  // "to" is inclusive: grants active on that day count.
  .transform((p) => ({ from: p.from, to: new Date(p.to.getTime() + 86_400_000) }));

export type ReviewPeriod = z.infer<typeof reviewPeriodSchema>;

export interface ReviewGrant {
  requestId: string;
  requester: string;
  /** For a service identity: its owners, who are one party with it. */
  requesterOwners: string[];
  workflowId: string;
  targetId: string;
  targetTitle: string;
  environment: string;
  role: string | null;
  justification: string;
  /** The ticket the justification names, when the target requires one, and its link. */
  ticket: string | null;
  ticketUrl: string | null;
  status: string;
  activatedAt: Date;
  endedAt: Date | null;
  /** Seconds the grant lasted (so far, if still active). */
  lastedSeconds: number;
  approvedBy: { email: string; comment: string; owners: string[] }[];
  /** Approved (or reviewed) by someone of the requester's party: only possible before owners counted, and shown so a reviewer sees it. */
  sameParty: boolean;
  autoApprovedBy: string | null;
  breakGlass: boolean;
  breakGlassReason: string | null;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  /** Approved by people none of whom wrote a comment. */
  noApproverComment: boolean;
}

export interface AccessReview {
  period: { from: Date; to: Date };
  grants: ReviewGrant[];
  totals: { grants: number; people: number; breakGlass: number; breakGlassUnreviewed: number; noApproverComment: number; autoApproved: number };
  /** Grants active on each day of the period. */
  perDay: { day: string; active: number }[];
  perTarget: { targetId: string; title: string; grants: number }[];
}

export async function accessReview(period: ReviewPeriod, now = new Date()): Promise<AccessReview> {
  const rows = await db.accessRequest.findMany({
    where: {
      activatedAt: { not: null, lt: period.to },
      OR: [{ endedAt: null }, { endedAt: { gt: period.from } }],
    },
    orderBy: { activatedAt: "asc" },
    include: {
      requester: { select: { email: true, owners: { select: { owner: { select: { email: true } } } } } },
      decisions: {
        where: { decision: "approve" },
        include: { approver: { select: { email: true, owners: { select: { owner: { select: { email: true } } } } } } },
        orderBy: { createdAt: "asc" },
      },
    },
  });
  const reviewers = await db.user.findMany({
    where: { id: { in: rows.map((r) => r.reviewedById).filter((v): v is string => v !== null) } },
    select: { id: true, email: true, owners: { select: { owner: { select: { email: true } } } } },
  });
  const reviewer = new Map(reviewers.map((u) => [u.id, u.email]));
  const reviewerOwners = new Map(reviewers.map((u) => [u.id, u.owners.map((o) => o.owner.email)]));
  const targets = policy().targets;

  const grants: ReviewGrant[] = rows
    // A one-off action (a job run) has no lasting access to review; a grant that never ended is still open.
    .filter((r) => r.activatedAt && (r.endedAt ?? r.expiresAt ?? now) > period.from)
    .map((r) => {
      const end = r.endedAt ?? (r.status === "active" ? now : r.expiresAt);
      const approvedBy = r.decisions.map((d) => ({ email: d.approver.email, comment: d.comment, owners: d.approver.owners.map((o) => o.owner.email) }));
      const requesterOwners = r.requester.owners.map((o) => o.owner.email);
      const requesterParty = [r.requester.email, ...requesterOwners];
      const reviewerEmail = r.reviewedById ? (reviewer.get(r.reviewedById) ?? r.reviewedById) : null;
      const inParty = (who: { email: string; owners: string[] }) => [who.email, ...who.owners].some((e) => requesterParty.includes(e));
      return {
        requestId: r.id,
        requester: r.requester.email,
        requesterOwners,
        sameParty: approvedBy.some(inParty) || (reviewerEmail !== null && inParty({ email: reviewerEmail, owners: reviewerOwners.get(r.reviewedById!) ?? [] })),
        workflowId: r.workflowId,
        targetId: r.targetId,
        targetTitle: targets[r.targetId]?.title ?? r.targetId,
        environment: targets[r.targetId]?.environment ?? "",
        role: typeof (r.input as { role?: unknown }).role === "string" ? (r.input as { role: string }).role : null,
        justification: r.justification,
        ticket: r.ticketKey,
        ticketUrl: r.ticketUrl,
        status: r.status,
        activatedAt: r.activatedAt!,
        endedAt: r.endedAt,
        lastedSeconds: Math.max(0, Math.round(((end ?? now).getTime() - r.activatedAt!.getTime()) / 1000)),
        approvedBy,
        autoApprovedBy: r.autoApprovedBy,
        breakGlass: r.breakGlass,
        breakGlassReason: r.breakGlassReason,
        reviewedBy: reviewerEmail,
        reviewedAt: r.reviewedAt,
        noApproverComment: approvedBy.length > 0 && approvedBy.every((a) => a.comment.trim() === ""),
      };
    });

  const days = Math.round((period.to.getTime() - period.from.getTime()) / 86_400_000);
  const perDay = Array.from({ length: days }, (_, i) => {
    const start = new Date(period.from.getTime() + i * 86_400_000);
    const end = new Date(start.getTime() + 86_400_000);
    const active = grants.filter((g) => g.activatedAt < end && new Date(g.activatedAt.getTime() + g.lastedSeconds * 1000) > start).length;
    return { day: start.toISOString().slice(0, 10), active };
  });
  const byTarget = new Map<string, number>();
  for (const g of grants) byTarget.set(g.targetId, (byTarget.get(g.targetId) ?? 0) + 1);
  const perTarget = [...byTarget.entries()]
    .map(([targetId, n]) => ({ targetId, title: targets[targetId]?.title ?? targetId, grants: n }))
    .sort((a, b) => b.grants - a.grants);

  return {
    period,
    grants,
    totals: {
      grants: grants.length,
      people: new Set(grants.map((g) => g.requester)).size,
      breakGlass: grants.filter((g) => g.breakGlass).length,
      breakGlassUnreviewed: grants.filter((g) => g.breakGlass && !g.reviewedAt).length,
      noApproverComment: grants.filter((g) => g.noApproverComment).length,
      autoApproved: grants.filter((g) => g.autoApprovedBy).length,
    },
    perDay,
    perTarget,
  };
}

export const REVIEW_COLUMNS = [
  "requestId",
  "requester",
  "workflowId",
  "targetId",
  "environment",
  "role",
  "status",
  "activatedAt",
  "endedAt",
  "lastedMinutes",
  "approvedBy",
  "approverComments",
  "autoApprovedBy",
  "breakGlass",
  "breakGlassReason",
  "reviewedBy",
  "requesterOwners",
  "approverOwners",
  "sameParty",
  "noApproverComment",
  "justification",
  "ticket",
  "ticketUrl",
] as const;

export function reviewRow(g: ReviewGrant): Record<(typeof REVIEW_COLUMNS)[number], unknown> {
  return {
    ...g,
    lastedMinutes: Math.round(g.lastedSeconds / 60),
    approvedBy: g.approvedBy.map((a) => a.email).join("; "),
    approverComments: g.approvedBy
      .map((a) => a.comment)
      .filter(Boolean)
      .join(" | "),
    requesterOwners: g.requesterOwners.join("; "),
    approverOwners: g.approvedBy.map((a) => a.owners.join(" ")).join("; "),
  };
}
