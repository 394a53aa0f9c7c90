import type { Metadata } from "next";
import Link from "next/link";
import { EndSessionsButton } from "@/components/admin/end-sessions-button";
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
      <p className="mb-6 text-slate-600">
        People who have signed in. Roles come from IdP groups and refresh at each sign-in and at each directory change. Offboarding shows what it will end
        before it does.
      </p>
      {users.length === 0 ? (
        <EmptyState title="Nobody has signed in yet" />
      ) : (
        <DataTable headers={["User", "Groups", "Roles", "Last sign-in", "Sessions", "", ""]}>
          {users.map((u) => (
            <tr key={u.id} data-testid="user-row">
              <td className="px-4 py-2 font-medium">
                {u.email}
                {u.active ? null : <span className="ml-2 rounded bg-slate-200 px-1.5 py-0.5 text-xs font-semibold text-slate-700">deactivated</span>}
              </td>
              <td className="px-4 py-2">{u.groups.join(", ") || "—"}</td>
              <td className="px-4 py-2">{u.roles.join(", ") || "—"}</td>
              <td className="px-4 py-2 whitespace-nowrap">{formatTime(u.lastSignInAt)}</td>
              <td className="px-4 py-2">{u.activeSessions}</td>
              <td className="px-4 py-2">
                {u.id !== who.id ? <EndSessionsButton userId={u.id} email={u.email} /> : <span className="text-xs text-slate-600">you</span>}
              </td>
              <td className="px-4 py-2">
                {u.id !== who.id ? (
                  <Link
                    href={`/admin/users/${u.id}/offboard`}
                    className="text-sm font-semibold text-rose-700 hover:underline"
                    aria-label={`${u.active ? "Offboard" : "Deactivated"} ${u.email}`}
                  >
                    {u.active ? "Offboard…" : "Deactivated…"}
                  </Link>
                ) : null}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </div>
  );
}
