import type { Metadata } from "next";
import Link from "next/link";
import { CatalogBrowser, type CatalogItem } from "@/components/catalog/catalog-browser";
import { EmptyState } from "@/components/ui/empty-state";
import { recentlyUsed } from "@/lib/approvals/queries";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { workflowsFor } from "@/lib/workflows/catalog";

export const metadata: Metadata = { title: "Catalog" };

export default async function CatalogPage() {
  const who = await requirePrincipal();
  const items: CatalogItem[] = workflowsFor(who).map(({ id, title, description, category, risk, targets }) => ({
    id,
    title,
    description,
    category,
    risk,
    targets: targets.map((t) => ({ id: t.id, title: t.title, unavailableReason: t.unavailableReason })),
  }));
  const recent = await recentlyUsed(who, items);
  return (
    <div>
      <h1 className="text-2xl font-bold tracking-tight">Catalog</h1>
      <p className="mt-1 mb-6 text-slate-600">Pick what you need. Every request is approved according to the policy and expires by itself.</p>
      {items.length === 0 ? (
        <EmptyState title="Nothing you can request">
          Your groups do not allow any workflow. Ask the platform team if you need access.
          {hasRole(who, "auditor") ? (
            <>
              {" "}
              As an auditor, see the{" "}
              <Link href="/history" className="text-indigo-700 underline">
                history
              </Link>
              .
            </>
          ) : null}
        </EmptyState>
      ) : (
        <CatalogBrowser items={items} recent={recent} isAdmin={hasRole(who, "admin")} />
      )}
    </div>
  );
}
