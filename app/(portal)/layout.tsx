import type { ReactNode } from "react";
import type { NavItem } from "@/components/layout/nav";
import { SiteHeader } from "@/components/layout/site-header";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { env } from "@/lib/env";

export const dynamic = "force-dynamic";

export default async function PortalLayout({ children }: { children: ReactNode }) {
  const who = await requirePrincipal();
  const items: NavItem[] = [];
  if (hasRole(who, "requester")) items.push({ href: "/catalog", label: "Catalog" }, { href: "/requests", label: "My requests" });
  if (hasRole(who, "approver")) items.push({ href: "/approvals", label: "Approvals" });
  if (hasRole(who, "auditor")) items.push({ href: "/history", label: "History" });
  // Auditors verify the audit chain; admins reach it under Admin.
  if (hasRole(who, "auditor") && !hasRole(who, "admin")) items.push({ href: "/admin/audit", label: "Audit chain" });
  // Straight to the first admin page: no redirect hop in the browser between two clicks.
  if (hasRole(who, "admin")) items.push({ href: "/admin/users", label: "Admin", section: "/admin" });
  return (
    <div className="min-h-screen">
      <SiteHeader items={items} email={who.email} roles={who.roles} signOut={env().LATCHKEY_AUTH_MODE === "oidc"} />
      <main className="mx-auto max-w-6xl px-4 py-8 sm:px-6">{children}</main>
    </div>
  );
}
