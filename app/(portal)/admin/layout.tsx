import type { ReactNode } from "react";
import { Nav } from "@/components/layout/nav";
import { Alert } from "@/components/ui/alert";
import { hasRole, requirePrincipal } from "@/lib/auth/session";

const TABS = [
  { href: "/admin/users", label: "Users" },
  { href: "/admin/services", label: "Service identities" },
  { href: "/admin/keys", label: "Signing keys" },
  { href: "/admin/audit", label: "Audit chain" },
  { href: "/admin/notifications", label: "Notifications" },
  { href: "/admin/integrations", label: "Integrations" },
];

/** Admin pages share a tab bar; each page and action still checks the admin role itself. */
export default async function AdminLayout({ children }: { children: ReactNode }) {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">Administration is open to admins only.</Alert>;
  return (
    <div>
      <div className="mb-6 rounded-lg bg-slate-800 p-1.5">
        <Nav items={TABS} label="Administration" />
      </div>
      {children}
    </div>
  );
}
