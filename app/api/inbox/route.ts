import { inboxFor } from "@/lib/approvals/queries";
import { currentPrincipal } from "@/lib/auth/session";

export const dynamic = "force-dynamic";

/** The approvals inbox, polled by the inbox page. Session required; roles checked in lib. */
export async function GET() {
  const who = await currentPrincipal();
  if (!who) return Response.json({ error: "Sign in first." }, { status: 401 });
  if (!who.roles.includes("approver")) return Response.json({ error: "Only approvers have an inbox." }, { status: 403 });
  return Response.json({ requests: await inboxFor(who) }, { headers: { "cache-control": "no-store" } });
}
