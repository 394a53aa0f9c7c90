import type { Metadata } from "next";
import { EndSessionsButton } from "@/components/layout/end-sessions-button";
import { Alert } from "@/components/ui/alert";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { listUsers } from "@/lib/auth/users";

export const metadata: Metadata = { title: "Users" };

export default async function UsersPage() {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">User administration is open to admins only.</Alert>;
  const users = await listUsers();
  return (
    <div>
      <h1 className="mb-1 text-2xl font-bold tracking-tight">Users</h1>
      <p className="mb-6 text-slate-600">People who have signed in. Roles come from IdP groups and refresh at each sign-in.</p>
      {users.length === 0 ? (
        <EmptyState title="Nobody has signed in yet" />
      ) : (
        <div className="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
          <table className="w-full text-left text-sm">
            <thead className="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
              <tr>
                <th className="px-4 py-2">User</th>
                <th className="px-4 py-2">Groups</th>
                <th className="px-4 py-2">Roles</th>
                <th className="px-4 py-2">Last sign-in</th>
                <th className="px-4 py-2">Sessions</th>
                <th className="px-4 py-2" />
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {users.map((u) => (
                <tr key={u.id} data-testid="user-row">
                  <td className="px-4 py-2 font-medium">{u.email}</td>
                  <td className="px-4 py-2">{u.groups.join(", ") || "—"}</td>
                  <td className="px-4 py-2">{u.roles.join(", ") || "—"}</td>
                  <td className="px-4 py-2 whitespace-nowrap">{formatTime(u.lastSignInAt)}</td>
                  <td className="px-4 py-2">{u.activeSessions}</td>
                  <td className="px-4 py-2">{u.id !== who.id ? <EndSessionsButton userId={u.id} email={u.email} /> : <span className="text-xs text-slate-500">you</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
