import { z } from "zod";
import { storableString } from "../text";

const STATUSES = ["pending", "approved", "executing", "active", "completed", "expired", "revoked", "rejected", "cancelled", "failed"] as const;
/** The first and last days a filter may name: PostgreSQL has no year 0, and nothing Latchkey recorded is older. */
export const FIRST_DAY = "1970-01-01";
export const LAST_DAY = "9999-12-30";
/** A whole UTC day, YYYY-MM-DD, that exists and lies within the range PostgreSQL and JavaScript agree on. */
export const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, { message: "Use a date like 2026-11-25.", abort: true })
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), {
    message: "That date does not exist.",
    abort: true,
  })
  .refine((s) => s >= FIRST_DAY && s <= LAST_DAY, { message: `Use a date between ${FIRST_DAY} and ${LAST_DAY}.` })
  .transform((s) => new Date(`${s}T00:00:00Z`));
const id = (label: string) =>
  z
    .string()
    .trim()
    .max(64, { message: `Unknown ${label}.` })
    .regex(/^[\w.-]*$/, { message: `Unknown ${label}.` })
    .optional();
const email = storableString().trim().toLowerCase().max(200, { message: "An e-mail address has at most 200 characters." }).optional();
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
    action: z
      .string()
      .trim()
      .regex(/^[a-z_.]*$/, { message: "Unknown action." })
      .max(64, { message: "Unknown action." })
      .optional(),
    q: storableString().trim().max(200, { message: "Search for at most 200 characters." }).optional(),
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
