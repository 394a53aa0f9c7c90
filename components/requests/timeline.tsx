import type { RequestStatus } from "@prisma/client";
import { formatTime } from "../ui/format";

export interface TimelineEvent {
  id: string;
  occurredAt: Date;
  actorType: string;
  actorEmail: string | null;
  action: string;
  fromStatus: RequestStatus | null;
  toStatus: RequestStatus | null;
  data: unknown;
}

export const ACTION_LABELS: Record<string, string> = {
  "request.created": "Requested",
  "request.approval_recorded": "Approval recorded",
  "request.approved": "Approved",
  "request.rejected": "Rejected",
  "request.cancelled": "Cancelled",
  "request.executing": "Carrying out",
  "credential.issued": "Credential issued",
  "credential.revealed": "Credential shown to its owner",
  "grant.activated": "Access active",
  "grant.expired": "Expired",
  "grant.revoked": "Revoked",
  "request.auto_approved": "Approved automatically by policy",
  "request.on_call_unknown": "On-call rule not applied: the on-call service did not answer",
  "request.break_glass": "BREAK-GLASS: opened without approval",
  "break_glass.reviewed": "Break-glass reviewed",
  "request.stage_passed": "Stage passed",
  "request.timed_out": "Expired waiting for approval",
  "request.failed": "Failed",
  "grant.extension_requested": "Extension requested",
  "request.execution_retry": "Attempt failed, retrying",
  "integration.performed": "Carried out on the target system",
  "integration.undone": "Removed from the target system",
  "integration.state": "Run state changed",
  "request.completed": "Completed",
  "auth.signed_in": "Signed in",
  "auth.signed_out": "Signed out",
  "auth.sessions_ended": "Sessions ended by an admin",
  "token.created": "API token created",
  "token.revoked": "API token revoked",
  "mcp.call": "Agent tool call (MCP)",
  "service_identity.created": "Service identity created",
  "service_identity.updated": "Service identity changed",
  "key.rotated": "Signing key rotated",
  "key.created": "Signing key created",
  "history.exported": "History exported",
  "access_review.exported": "Access review downloaded",
};

/** Who acted, in words: Latchkey itself, or the identity and how (portal, personal token, service token). */
export function actorLabel(e: { actorType: string; actorEmail: string | null }): string {
  if (e.actorType === "system") return "Latchkey";
  const via = e.actorType === "personal_token" ? " (personal token)" : e.actorType === "service_token" ? " (service token)" : "";
  return `${e.actorEmail ?? "unknown"}${via}`;
}

export function actionLabel(action: string): string {
  return ACTION_LABELS[action] ?? action;
}

function detail(data: unknown): string | null {
  if (!data || typeof data !== "object") return null;
  const d = data as Record<string, unknown>;
  if (typeof d.comment === "string" && d.comment) return `“${d.comment}”`;
  if (typeof d.reason === "string") return d.reason;
  const shift = d.onCall as { provider?: string; schedule?: string; start?: string | null; end?: string | null } | undefined;
  const onCall = shift?.schedule
    ? `on call in ${shift.provider} schedule ${shift.schedule}${shift.start && shift.end ? ` (shift ${shift.start} to ${shift.end})` : ""}`
    : null;
  if (typeof d.rule === "string") return `rule ${d.rule}${onCall ? `: ${onCall}` : ""}`;
  if (onCall) return onCall;
  if (typeof d.error === "string") return d.error;
  if (typeof d.state === "string") return d.state;
  if (typeof d.role === "string" && typeof d.privileges === "string") return `role ${d.role}: ${d.privileges}`;
  if (typeof d.jti === "string") return `jti ${d.jti}`;
  return null;
}

export function Timeline({ events }: { events: TimelineEvent[] }) {
  return (
    <ol aria-label="Timeline" className="relative space-y-4 border-l border-slate-200 pl-5">
      {events.map((e) => (
        <li key={e.id} data-testid="timeline-event" className="relative">
          <span className="absolute top-1.5 -left-[25px] h-2.5 w-2.5 rounded-full bg-slate-400" aria-hidden />
          <p className="text-sm">
            <span className="font-semibold" data-testid="timeline-label">
              {actionLabel(e.action)}
            </span>
            {e.fromStatus || e.toStatus ? (
              <span className="text-slate-600">
                {" "}
                · {e.fromStatus ?? "new"} → {e.toStatus}
              </span>
            ) : null}
          </p>
          <p className="text-xs text-slate-600">
            {formatTime(e.occurredAt)} · {actorLabel(e)}
          </p>
          {detail(e.data) ? <p className="mt-0.5 text-sm text-slate-700">{detail(e.data)}</p> : null}
        </li>
      ))}
    </ol>
  );
}
