import type { NotificationEvent } from "../policy/schema";

/**
 * The text and HTML of a notification e-mail, built from plain facts (pure, so a test can
 * read it without a mail server). Everything a person typed (justification, comments) is
 * escaped in the HTML part; the link is the only thing the reader needs to act.
 */

export interface EmailFacts {
  event: NotificationEvent;
  /** "approver" mails ask for a decision; "requester" mails tell the outcome. */
  audience: "approver" | "requester";
  requester: string;
  workflow: string;
  target: string;
  environment: string;
  role: string | null;
  /** "1h 30m", or null for a one-off action. */
  duration: string | null;
  justification: string;
  ticket: { key: string; url: string | null } | null;
  stage: { name: string; groups: string[] } | null;
  decidedBy: string | null;
  comment: string | null;
  expiresAt: string | null;
  url: string;
}

export interface EmailMessage {
  subject: string;
  text: string;
  html: string;
}

function headline(f: EmailFacts): string {
  const what = `${f.workflow} on ${f.target}`;
  switch (f.event) {
    case "pending":
      return `Approval needed: ${what} for ${f.requester}`;
    case "break-glass":
      return `Break-glass: ${f.requester} opened ${what}; it needs a review`;
    case "approved":
      return f.audience === "requester" ? `Approved: your request for ${what}` : `Approved: ${what} for ${f.requester}`;
    case "rejected":
      return f.audience === "requester" ? `Rejected: your request for ${what}` : `Rejected: ${what} for ${f.requester}`;
    case "expiring":
      return `Expires soon: your access to ${what}`;
    case "expired":
      return `Expired: your access to ${what}`;
  }
}

function rows(f: EmailFacts): [string, string, string | null][] {
  const out: [string, string, string | null][] = [
    ["Requested by", f.requester, null],
    ["What", `${f.workflow} on ${f.target} (${f.environment})${f.role ? `, role ${f.role}` : ""}`, null],
    ["How long", f.duration ?? "one-off action", null],
    ["Why", f.justification, null],
  ];
  if (f.ticket) out.push(["Ticket", f.ticket.key, f.ticket.url]);
  if (f.stage && (f.event === "pending" || f.event === "break-glass"))
    out.push(["Stage", `${f.stage.name}: approvers from ${f.stage.groups.join(", ")}`, null]);
  if (f.decidedBy) out.push([f.event === "rejected" ? "Rejected by" : "Approved by", f.decidedBy, null]);
  if (f.comment) out.push(["Comment", f.comment, null]);
  if (f.expiresAt && (f.event === "expiring" || f.event === "approved")) out.push(["Expires", f.expiresAt, null]);
  return out;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function composeEmail(f: EmailFacts): EmailMessage {
  const subject = `[Latchkey] ${headline(f)}`.replace(/[\r\n]+/g, " ");
  const action = f.audience === "approver" && f.event === "pending" ? "Approve or reject it" : f.event === "break-glass" ? "Review it" : "See the request";
  const table = rows(f);
  const text = [
    headline(f),
    "",
    ...table.map(([label, value, link]) => `${label}: ${value}${link ? ` <${link}>` : ""}`),
    "",
    `${action}: ${f.url}`,
    "",
    "You get this because of your part in this request. Turn e-mail off under Settings > Notifications.",
  ].join("\n");
  const html = `<!doctype html><html><body style="font-family:sans-serif">
<p><strong>${escape(headline(f))}</strong></p>
<table cellpadding="4">${table.map(([label, value, link]) => `<tr><th align="left" valign="top">${escape(label)}</th><td style="white-space:pre-wrap">${link ? `<a href="${escape(link)}">${escape(value)}</a>` : escape(value)}</td></tr>`).join("")}</table>
<p><a href="${escape(f.url)}">${escape(action)}</a></p>
<p style="color:#555;font-size:small">You get this because of your part in this request. Turn e-mail off under Settings &gt; Notifications.</p>
</body></html>`;
  return { subject, text, html };
}
