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

/** Pages auditors may open too: verifying the audit chain is part of their work. */
const AUDITOR_TABS = new Set(["/admin/audit"]);

/**
 * Admin pages share a tab bar; each page and action still checks the role itself (a
 * layout's check does not stop a page from rendering), so an auditor let through here is
 * refused by every page but the audit chain's.
 */
export default async function AdminLayout({ children }: { children: ReactNode }) {
  const who = await requirePrincipal();
  const admin = hasRole(who, "admin");
  if (!admin && !hasRole(who, "auditor")) return <Alert tone="error">Administration is open to admins only.</Alert>;
  return (
    <div>
      <div className="mb-6 rounded-lg bg-slate-800 p-1.5">
        <Nav items={admin ? TABS : TABS.filter((t) => AUDITOR_TABS.has(t.href))} label="Administration" />
      </div>
      {children}
    </div>
  );
}
