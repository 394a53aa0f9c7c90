import Link from "next/link";
import type { ReactNode } from "react";
import { SignOutButton } from "@/components/layout/auth-buttons";
import { Nav, type NavItem } from "@/components/layout/nav";
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
      <header className="bg-slate-900 print:hidden">
        <div className="mx-auto flex max-w-6xl items-center justify-between gap-6 px-6 py-3">
          <div className="flex shrink-0 items-center gap-6">
            <Link href="/" className="text-lg font-bold tracking-tight text-white">
              Latchkey
            </Link>
            <Nav items={items} />
          </div>
          <div className="flex items-center gap-4 text-sm text-slate-300">
            <span data-testid="signed-in-as" className="min-w-0 text-right">
              {who.email} <span className="text-slate-500">({who.roles.join(", ")})</span>
            </span>
            <Link href="/settings/tokens" className="rounded-md px-2 py-1 whitespace-nowrap text-slate-300 hover:bg-slate-800 hover:text-white">
              API tokens
            </Link>
            {/* Behind an identity-aware proxy the proxy owns the session: there is nothing here to sign out of. */}
            {env().LATCHKEY_AUTH_MODE === "oidc" ? <SignOutButton /> : null}
          </div>
        </div>
      </header>
      <main className="mx-auto max-w-6xl px-6 py-8">{children}</main>
    </div>
  );
}
