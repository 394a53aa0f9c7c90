import { z } from "zod";

const STATUSES = ["draft", "pending", "approved", "executing", "active", "completed", "expired", "revoked", "rejected", "cancelled", "failed"] as const;
const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, { message: "Use a date like 2026-11-25." })
  .transform((s) => new Date(`${s}T00:00:00Z`));

/** The history page's query string: every filter optional, each checked. */
export const historyFiltersSchema = z
  .object({
    actor: z.string().trim().max(200).optional(),
    status: z.enum(STATUSES, { message: "Unknown status." }).optional(),
    action: z.string().trim().regex(/^[a-z_.]*$/, { message: "Unknown action." }).max(64).optional(),
    from: day.optional(),
    to: day.optional(),
    before: z.string().regex(/^\d+$/, { message: "Bad page cursor." }).transform(BigInt).optional(),
  })
  .transform((f) => ({
    ...f,
    actor: f.actor || undefined,
    action: f.action || undefined,
    // "to" is inclusive in the form: events on that day count.
    to: f.to ? new Date(f.to.getTime() + 86_400_000) : undefined,
  }))
  .refine((f) => !f.from || !f.to || f.from < f.to, { message: "The start date is after the end date.", path: ["to"] });

export const HISTORY_STATUSES = STATUSES;
