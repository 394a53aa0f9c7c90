"use client";

import Link from "next/link";
import { useMemo, useState } from "react";
import { EmptyState } from "../ui/empty-state";

export interface CatalogItem {
  id: string;
  title: string;
  description: string;
  category: string;
  risk: string;
  targets: { id: string; title: string; unavailableReason: string | null }[];
}

export interface RecentItem {
  workflowId: string;
  workflowTitle: string;
  targetId: string;
  targetTitle: string;
}

/** The catalog: a search box, the recently used row, then workflows grouped by category. */
export function CatalogBrowser({ items, recent, isAdmin }: { items: CatalogItem[]; recent: RecentItem[]; isAdmin?: boolean }) {
  const [query, setQuery] = useState("");
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    if (!q) return items;
    return items.filter((i) => [i.title, i.description, i.category, ...i.targets.map((t) => t.title)].some((text) => text.toLowerCase().includes(q)));
  }, [items, query]);
  const categories = [...new Set(shown.map((i) => i.category))].sort();
  return (
    <div className="space-y-8">
      <input
        type="search"
        aria-label="Search the catalog"
        placeholder="Search workflows and targets…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        className="block w-full max-w-md rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500"
      />
      {recent.length > 0 && !query ? (
        <section aria-labelledby="recent">
          <h2 id="recent" className="mb-2 text-sm font-semibold uppercase tracking-wide text-slate-600">
            Recently used
          </h2>
          <ul className="flex flex-wrap gap-2">
            {recent.map((r) => (
              <li key={`${r.workflowId}/${r.targetId}`}>
                <Link
                  data-testid="recent-item"
                  href={`/catalog/${r.workflowId}?target=${encodeURIComponent(r.targetId)}`}
                  className="inline-block rounded-full border border-slate-300 bg-white px-3 py-1 text-sm hover:border-slate-500"
                >
                  {r.workflowTitle} · {r.targetTitle}
                </Link>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {shown.length === 0 ? <EmptyState title={`Nothing matches “${query}”`}>Try another word, or clear the search.</EmptyState> : null}
      {categories.map((category) => (
        <section key={category} aria-labelledby={`cat-${category}`}>
          <h2 id={`cat-${category}`} className="mb-3 text-lg font-semibold">
            {category}
          </h2>
          <ul className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
            {shown
              .filter((i) => i.category === category)
              .map((item) => (
                <li key={item.id}>
                  <CatalogCard item={item} isAdmin={isAdmin} />
                </li>
              ))}
          </ul>
        </section>
      ))}
    </div>
  );
}

/** A workflow's card; a workflow none of whose targets can be carried out here says so instead of inviting a request. */
function CatalogCard({ item, isAdmin }: { item: CatalogItem; isAdmin?: boolean }) {
  const available = item.targets.filter((t) => !t.unavailableReason);
  const unavailable = item.targets.filter((t) => t.unavailableReason);
  const body = (
    <>
      <h3 className="text-lg font-semibold">
        {item.title}
        {available.length === 0 ? (
          <span className="ml-2 rounded bg-slate-200 px-1.5 py-0.5 align-middle text-xs font-semibold text-slate-800">Unavailable</span>
        ) : null}
      </h3>
      <p className="mt-1 text-sm text-slate-600">{item.description}</p>
      {available.length ? (
        <p className="mt-3 text-xs text-slate-600">
          {available.length} target{available.length === 1 ? "" : "s"}: {available.map((t) => t.title).join(", ")}
        </p>
      ) : null}
      {unavailable.length ? (
        <ul className="mt-3 space-y-1 text-xs text-amber-900" data-testid="unavailable">
          {unavailable.map((t) => (
            <li key={t.id}>
              <strong>{t.title}</strong> unavailable: {t.unavailableReason}
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
  const box = "block h-full rounded-lg border border-slate-200 bg-white p-5 shadow-sm";
  if (available.length === 0)
    return (
      <div data-testid="catalog-item" className={`${box} opacity-90`}>
        {body}
        {isAdmin ? (
          <Link href="/admin/integrations" className="mt-3 inline-block text-sm font-medium text-indigo-700 underline">
            Admin → Integrations
          </Link>
        ) : null}
      </div>
    );
  if (isAdmin && unavailable.length)
    // Some targets work and some need setting up: the card stays one click target (the title's link
    // covers it) while the admin's link to Integrations sits above it, since links cannot nest.
    return (
      <div data-testid="catalog-item" className={`${box} relative transition hover:border-slate-400 hover:shadow`}>
        <Link href={`/catalog/${item.id}`} aria-label={item.title} className="absolute inset-0 rounded-lg" />
        {body}
        <Link href="/admin/integrations" className="relative mt-3 inline-block text-sm font-medium text-indigo-700 underline">
          Admin → Integrations
        </Link>
      </div>
    );
  return (
    <Link data-testid="catalog-item" href={`/catalog/${item.id}`} className={`${box} transition hover:border-slate-400 hover:shadow`}>
      {body}
    </Link>
  );
}
