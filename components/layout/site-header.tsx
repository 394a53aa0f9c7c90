"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { useEffect, useState } from "react";
import { SignOutButton } from "./auth-buttons";
import { Nav, type NavItem } from "./nav";

/**
 * The portal's header. Below the large breakpoint everything but the name folds behind a
 * Menu button, so a phone (390 px) shows the navigation, the person, API tokens and Sign
 * out instead of pushing them off screen. One set of elements serves both layouts.
 */
export function SiteHeader({ items, email, roles, signOut }: { items: NavItem[]; email: string; roles: string[]; signOut: boolean }) {
  const [open, setOpen] = useState(false);
  const pathname = usePathname();
  useEffect(() => setOpen(false), [pathname]);
  return (
    <header className="bg-slate-900 print:hidden">
      <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-x-6 gap-y-3 px-4 py-3 sm:px-6">
        <Link href="/" className="text-lg font-bold tracking-tight text-white">
          Latchkey
        </Link>
        <button
          type="button"
          className="rounded-md px-3 py-1.5 text-sm font-medium text-white ring-1 ring-slate-600 hover:bg-slate-800 lg:hidden"
          aria-expanded={open}
          aria-controls="site-menu"
          onClick={() => setOpen((o) => !o)}
        >
          {open ? "Close menu" : "Menu"}
        </button>
        <div
          id="site-menu"
          className={`${open ? "flex" : "hidden"} w-full flex-col gap-3 lg:flex lg:w-auto lg:flex-1 lg:flex-row lg:items-center lg:justify-between lg:gap-6`}
        >
          <Nav items={items} />
          <div className="flex flex-col items-start gap-2 text-sm text-slate-300 lg:flex-row lg:items-center lg:gap-4">
            {/* Wrapped between words only ("a dmin" was a role cut in two); the roles take their own line beside a wide navigation. */}
            <span data-testid="signed-in-as" className="min-w-0 [overflow-wrap:anywhere] lg:text-right">
              {email} <span className="text-slate-400 lg:block lg:text-xs">({roles.join(", ")})</span>
            </span>
            <Link href="/settings/tokens" className="rounded-md py-1 whitespace-nowrap text-slate-300 hover:bg-slate-800 hover:text-white lg:px-2">
              API tokens
            </Link>
            <Link href="/settings/notifications" className="rounded-md py-1 whitespace-nowrap text-slate-300 hover:bg-slate-800 hover:text-white lg:px-2">
              Notifications
            </Link>
            {/* Behind an identity-aware proxy the proxy owns the session: there is nothing here to sign out of. */}
            {signOut ? <SignOutButton /> : null}
          </div>
        </div>
      </div>
    </header>
  );
}
