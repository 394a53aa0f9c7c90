import type { RequestStatus } from "@prisma/client";
import type { SlackMessageContent } from "./client";

/**
 * Block Kit for the Slack app, built purely from what a request looks like now: the same
 * function renders the first post and every later update, so a message always says what
 * the portal says. Text from people (justifications, comments) goes into plain_text or
 * escaped mrkdwn, so it cannot mention @channel or forge links.
 */

export const APPROVE_ACTION = "latchkey_approve";
export const REJECT_ACTION = "latchkey_reject";
export const REJECT_VIEW = "latchkey_reject";
export const REJECT_COMMENT_BLOCK = "comment";
export const REJECT_COMMENT_ACTION = "comment";
/** The metadata event type on every posted message: with the delivery id, lets a reader drop duplicates. */
export const MESSAGE_EVENT_TYPE = "latchkey_request";

export interface RequestSummary {
  id: string;
  url: string;
  workflowTitle: string;
  targetTitle: string;
  requesterEmail: string;
  role: string | null;
  durationSeconds: number;
  justification: string;
  status: RequestStatus;
  breakGlass: boolean;
  stage: { name: string; index: number; count: number; groups: string[]; required: number; approvals: number };
  /** The last decision, when there is one: who, what, and their comment. */
  decidedBy: { email: string; decision: "approve" | "reject"; comment: string } | null;
  expiresAt: Date | null;
}

/** Escapes the three characters mrkdwn treats as control characters. */
export const escapeMrkdwn = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function duration(seconds: number): string {
  if (seconds <= 0) return "one-off";
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${Math.round(seconds / 60)} min`;
}

const OUTCOMES: Partial<Record<RequestStatus, string>> = {
  approved: "Approved",
  executing: "Approved",
  active: "Approved",
  completed: "Approved",
  rejected: "Rejected",
  cancelled: "Cancelled by the requester",
  expired: "Expired",
  revoked: "Approved, since revoked",
  failed: "Approved, but failed",
};

/** The one-line outcome of a request that no longer waits, naming who decided. */
export function outcomeLine(r: RequestSummary): string | null {
  if (r.status === "pending") return null;
  if (r.breakGlass && r.status === "active") return ":rotating_light: Opened with break-glass; an approver must review it in the portal.";
  const outcome = OUTCOMES[r.status] ?? r.status;
  if (r.status === "expired" && !r.decidedBy) return "Expired: nobody decided in time.";
  if (r.decidedBy && r.status !== "cancelled" && !(r.status === "expired" && r.decidedBy.decision !== "approve")) {
    const comment = r.decidedBy.comment ? `: “${escapeMrkdwn(r.decidedBy.comment)}”` : "";
    return `*${outcome}* by ${escapeMrkdwn(r.decidedBy.email)}${comment}`;
  }
  return `*${outcome}*`;
}

/** The channel message about a request; buttons only while it waits and the target opts in. */
export function requestMessage(r: RequestSummary, buttons: boolean): SlackMessageContent {
  const what = `${r.workflowTitle} on ${r.targetTitle}`;
  const headline = r.breakGlass ? `BREAK-GLASS: ${r.requesterEmail} opened ${what}` : `${r.requesterEmail} asks for ${what}`;
  const outcome = outcomeLine(r);
  const fields = [
    `*Requester*\n${escapeMrkdwn(r.requesterEmail)}`,
    `*Target*\n${escapeMrkdwn(r.targetTitle)}`,
    `*Access*\n${escapeMrkdwn(r.role ?? "—")}`,
    `*Duration*\n${duration(r.durationSeconds)}`,
  ].map((text) => ({ type: "mrkdwn", text }));
  const blocks: unknown[] = [
    { type: "header", text: { type: "plain_text", text: headline.slice(0, 150), emoji: false } },
    { type: "section", fields },
    { type: "section", text: { type: "mrkdwn", text: `*Why*\n${escapeMrkdwn(r.justification).slice(0, 2900)}` } },
  ];
  if (r.status === "pending") {
    const s = r.stage;
    const quorum = s.required > 1 ? `, ${s.approvals} of ${s.required} approvals so far` : "";
    blocks.push({
      type: "context",
      elements: [
        { type: "mrkdwn", text: `Stage ${s.index + 1} of ${s.count}: *${escapeMrkdwn(s.name)}*, approvers from ${escapeMrkdwn(s.groups.join(", "))}${quorum}` },
      ],
    });
  }
  if (outcome) blocks.push({ type: "section", text: { type: "mrkdwn", text: outcome } });
  const elements: unknown[] = [{ type: "button", text: { type: "plain_text", text: "Open in Latchkey" }, url: r.url, action_id: "latchkey_open" }];
  if (r.status === "pending" && buttons) {
    elements.unshift(
      { type: "button", style: "primary", text: { type: "plain_text", text: "Approve" }, action_id: APPROVE_ACTION, value: r.id },
      { type: "button", style: "danger", text: { type: "plain_text", text: "Reject" }, action_id: REJECT_ACTION, value: r.id },
    );
  }
  blocks.push({ type: "actions", block_id: "latchkey_decision", elements });
  const text = outcome ? `${headline}: ${outcome.replace(/\*/g, "")}` : `${headline}: waits for ${r.stage.name}. ${r.url}`;
  return { text, blocks };
}

export type DirectMessageEvent = "approved" | "rejected" | "expiring" | "expired";

/** The requester's direct message about their own request. */
export function directMessage(r: RequestSummary, event: DirectMessageEvent): SlackMessageContent {
  const what = `${r.workflowTitle} on ${r.targetTitle}`;
  const by = r.decidedBy ? ` by ${r.decidedBy.email}` : "";
  const lines: Record<DirectMessageEvent, string> = {
    approved: `Your request for ${what} was approved${by}.`,
    rejected: `Your request for ${what} was rejected${by}${r.decidedBy?.comment ? `: “${r.decidedBy.comment}”` : "."}`,
    expiring: `Your access to ${what} expires at ${r.expiresAt?.toISOString().slice(11, 16) ?? "?"} UTC.`,
    expired: r.status === "expired" && r.expiresAt ? `Your access to ${what} has expired.` : `Your request for ${what} has expired.`,
  };
  const text = `${lines[event]} ${r.url}`;
  return { text, blocks: [{ type: "section", text: { type: "mrkdwn", text: `${escapeMrkdwn(lines[event])}\n<${r.url}|Open in Latchkey>` } }] };
}

/** The modal asking for the reason of a rejection; the request id travels in private_metadata. */
export function rejectModal(r: Pick<RequestSummary, "id" | "workflowTitle" | "targetTitle" | "requesterEmail">): Record<string, unknown> {
  return {
    type: "modal",
    callback_id: REJECT_VIEW,
    private_metadata: JSON.stringify({ requestId: r.id }),
    title: { type: "plain_text", text: "Reject request" },
    submit: { type: "plain_text", text: "Reject" },
    close: { type: "plain_text", text: "Cancel" },
    blocks: [
      {
        type: "section",
        text: { type: "mrkdwn", text: `${escapeMrkdwn(r.requesterEmail)} asks for ${escapeMrkdwn(r.workflowTitle)} on ${escapeMrkdwn(r.targetTitle)}.` },
      },
      {
        type: "input",
        block_id: REJECT_COMMENT_BLOCK,
        label: { type: "plain_text", text: "Why do you reject it?" },
        element: { type: "plain_text_input", action_id: REJECT_COMMENT_ACTION, multiline: true, min_length: 1, max_length: 2000 },
      },
    ],
  };
}
