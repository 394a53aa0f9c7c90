import { z } from "zod";

const STATUSES = ["draft", "pending", "approved", "executing", "active", "completed", "expired", "revoked", "rejected", "cancelled", "failed"] as const;
const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, { message: "Use a date like 2026-11-25." })
  .transform((s) => new Date(`${s}T00:00:00Z`))
  .refine((d) => !Number.isNaN(d.getTime()), { message: "That date does not exist." });
const id = (label: string) => z.string().trim().max(64).regex(/^[\w.-]*$/, { message: `Unknown ${label}.` }).optional();
const email = z.string().trim().toLowerCase().max(200).optional();
const cursor = z
  .string()
  .regex(/^\d{1,19}$/, { message: "Bad page cursor." })
  .transform(BigInt)
  .refine((v) => v <= 9223372036854775807n, { message: "Bad page cursor." })
  .optional();

/**
 * The auditor's filters, from a query string (history page, exports): every filter
 * optional, each checked, one message per mistake. Dates are whole UTC days, `to` inclusive.
 */
export const historyFiltersSchema = z
  .object({
    actor: email,
    approver: email,
    workflow: id("workflow"),
    target: id("target"),
    environment: id("environment"),
    status: z.enum(STATUSES, { message: "Unknown status." }).optional(),
    action: z.string().trim().regex(/^[a-z_.]*$/, { message: "Unknown action." }).max(64).optional(),
    q: z.string().trim().max(200).optional(),
    from: day.optional(),
    to: day.optional(),
    sort: z.enum(["newest", "oldest"], { message: "Sort by newest or oldest." }).default("newest"),
    after: cursor,
    before: cursor,
    end: z.enum(["last"]).optional(),
  })
  .transform((f) => ({
    ...f,
    actor: f.actor || undefined,
    approver: f.approver || undefined,
    workflow: f.workflow || undefined,
    target: f.target || undefined,
    environment: f.environment || undefined,
    action: f.action || undefined,
    q: f.q || undefined,
    // "to" is inclusive in the form: events on that day count.
    to: f.to ? new Date(f.to.getTime() + 86_400_000) : undefined,
  }))
  .refine((f) => !f.from || !f.to || f.from < f.to, { message: "The start date is after the end date.", path: ["to"] });

export type HistoryQuery = z.infer<typeof historyFiltersSchema>;
export type HistoryFilters = Partial<Omit<HistoryQuery, "sort" | "after" | "before" | "end">>;

export const HISTORY_STATUSES = STATUSES;

/** The filters in force, for an export's header and the page's summary (dates as days). */
export function describeFilters(f: HistoryFilters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined) continue;
    out[k] = v instanceof Date ? (k === "to" ? new Date(v.getTime() - 86_400_000) : v).toISOString().slice(0, 10) : String(v);
  }
  return out;
}

/** The filters of a query, without its order and page position. */
export function filtersOf(query: HistoryQuery): HistoryFilters {
  const filters: Record<string, unknown> = { ...query };
  for (const key of ["sort", "after", "before", "end"]) delete filters[key];
  return filters as HistoryFilters;
}
