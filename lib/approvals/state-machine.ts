import type { RequestStatus } from "@prisma/client";

/**
 * The request lifecycle, in one place (pure: the writer, transition.ts, checks every move here):
 * pending → approved → executing → active → expired | revoked,
 * or executing → completed for one-off actions (a job run), with side exits rejected,
 * cancelled and failed, and pending → expired for a request nobody decided in time.
 */
export const TRANSITIONS: Readonly<Record<RequestStatus, readonly RequestStatus[]>> = {
  pending: ["approved", "rejected", "cancelled", "expired"],
  approved: ["executing", "failed"],
  executing: ["active", "completed", "failed"],
  active: ["expired", "revoked", "failed"],
  completed: [],
  expired: [],
  revoked: [],
  rejected: [],
  cancelled: [],
  failed: [],
};

export const TERMINAL: readonly RequestStatus[] = ["completed", "expired", "revoked", "rejected", "cancelled", "failed"];

export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return TRANSITIONS[from].includes(to);
}
