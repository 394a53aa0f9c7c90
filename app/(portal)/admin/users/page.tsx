import type { Metadata } from "next";
import { EndSessionsButton } from "@/components/layout/end-sessions-button";
import { Alert } from "@/components/ui/alert";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { listUsers } from "@/lib/auth/users";
import { DataTable } from "@/components/ui/data-table";

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
        <DataTable headers={["User", "Groups", "Roles", "Last sign-in", "Sessions", ""]}>
              {users.map((u) => (
                <tr key={u.id} data-testid="user-row">
                  <td className="px-4 py-2 font-medium">{u.email}</td>
                  <td className="px-4 py-2">{u.groups.join(", ") || "—"}</td>
                  <td className="px-4 py-2">{u.roles.join(", ") || "—"}</td>
                  <td className="px-4 py-2 whitespace-nowrap">{formatTime(u.lastSignInAt)}</td>
                  <td className="px-4 py-2">{u.activeSessions}</td>
                  <td className="px-4 py-2">{u.id !== who.id ? <EndSessionsButton userId={u.id} email={u.email} /> : <span className="text-xs text-slate-600">you</span>}</td>
                </tr>
              ))}
            </DataTable>
      )}
    </div>
  );
}
