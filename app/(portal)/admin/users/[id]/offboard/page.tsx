import type { Metadata } from "next";
import Link from "next/link";
import { OffboardForm, ReactivateButton } from "@/components/admin/offboard-form";
import { Alert } from "@/components/ui/alert";
import { DataTable } from "@/components/ui/data-table";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { offboardingPreview } from "@/lib/identity/offboarding";

export const metadata: Metadata = { title: "Offboard" };

export default async function OffboardPage({ params }: { params: Promise<{ id: string }> }) {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">User administration is open to admins only.</Alert>;
  const preview = await offboardingPreview((await params).id);
  if (!preview) return <Alert tone="warning">There is no person with this id. Service identities are managed under Admin → Service identities.</Alert>;
  const { user, sessions, tokens, grants, pending } = preview;
  return (
    <div className="space-y-6">
      <div>
        <Link href="/admin/users" className="text-sm text-slate-600 hover:underline">
          ← Users
        </Link>
        <h1 className="text-2xl font-bold tracking-tight">Offboard {user.email}</h1>
        <p className="text-slate-600">
          Offboarding deactivates the person (no sign-in, no API token) and ends, each step audited with your name and reason, what they hold now. It does not
          wait for the grants to expire.
        </p>
      </div>
      {!user.active ? (
        <>
          <Alert tone="info">
            {user.email} is deactivated. Reactivating lets them sign in again; their roles come from that sign-in, and nothing that was ended comes back.
          </Alert>
          {user.id !== who.id ? <ReactivateButton userId={user.id} email={user.email} /> : null}
        </>
      ) : null}
      <section aria-labelledby="will-end" className="space-y-3" data-testid="offboarding-preview">
        <h2 id="will-end" className="text-lg font-semibold">
          What this ends
        </h2>
        <ul className="list-disc pl-6 text-sm">
          <li data-testid="preview-sessions">{sessions} open session(s)</li>
          <li data-testid="preview-tokens">
            {tokens.length} API token(s){tokens.length ? `: ${tokens.map((t) => `${t.name} (${t.scopes.join(", ")})`).join("; ")}` : ""}
          </li>
          <li data-testid="preview-grants">
            {grants.length} active grant(s), revoked in their outside systems too (credentials refused, routes closed, database roles dropped and their sessions
            ended)
          </li>
          <li data-testid="preview-pending">{pending.length} pending request(s), cancelled</li>
        </ul>
        {grants.length ? (
          <DataTable headers={["Active grant", "Workflow", "Would end by itself"]}>
            {grants.map((g) => (
              <tr key={g.id} data-testid="preview-grant-row">
                <td className="px-4 py-2">
                  <Link href={`/requests/${g.id}`} className="text-indigo-700 hover:underline">
                    {g.targetTitle}
                  </Link>
                  {g.breakGlass ? <span className="ml-2 rounded bg-rose-100 px-1.5 py-0.5 text-xs font-semibold text-rose-900">break-glass</span> : null}
                </td>
                <td className="px-4 py-2">{g.workflowId}</td>
                <td className="px-4 py-2 whitespace-nowrap">{formatTime(g.expiresAt)}</td>
              </tr>
            ))}
          </DataTable>
        ) : null}
        {pending.length ? (
          <DataTable headers={["Pending request", "Workflow", "Asked"]}>
            {pending.map((r) => (
              <tr key={r.id} data-testid="preview-pending-row">
                <td className="px-4 py-2">{r.targetTitle}</td>
                <td className="px-4 py-2">{r.workflowId}</td>
                <td className="px-4 py-2 whitespace-nowrap">{formatTime(r.createdAt)}</td>
              </tr>
            ))}
          </DataTable>
        ) : null}
      </section>
      {user.id === who.id ? <Alert tone="info">You cannot offboard yourself; ask another admin.</Alert> : <OffboardForm userId={user.id} email={user.email} />}
    </div>
  );
}
