import type { Metadata } from "next";
import Link from "next/link";
import { EmptyState } from "@/components/ui/empty-state";
import { requirePrincipal } from "@/lib/auth/session";
import { policy } from "@/lib/policy/current";
import { requestableTargets } from "@/lib/policy/evaluate";
import { listWorkflows } from "@/lib/workflows/registry";

export const metadata: Metadata = { title: "Catalog" };

export default async function CatalogPage() {
  const who = await requirePrincipal();
  const p = policy();
  const available = listWorkflows()
    .map((w) => ({ workflow: w, targets: requestableTargets(p, w.id, who) }))
    .filter((x) => x.targets.length > 0);
  return (
    <div>
      <h1 className="text-2xl font-bold tracking-tight">Catalog</h1>
      <p className="mt-1 mb-6 text-slate-600">Pick what you need. Every request is approved according to the policy and expires by itself.</p>
      {available.length === 0 ? (
        <EmptyState title="Nothing you can request">Your groups do not allow any workflow. Ask the platform team if you need access.</EmptyState>
      ) : (
        <ul className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
          {available.map(({ workflow, targets }) => (
            <li key={workflow.id}>
              <Link
                href={`/catalog/${workflow.id}`}
                className="block h-full rounded-lg border border-slate-200 bg-white p-5 shadow-sm transition hover:border-slate-400 hover:shadow"
              >
                <p className="text-xs font-semibold uppercase tracking-wide text-slate-500">{workflow.category}</p>
                <h2 className="mt-1 text-lg font-semibold">{workflow.title}</h2>
                <p className="mt-1 text-sm text-slate-600">{workflow.description}</p>
                <p className="mt-3 text-xs text-slate-500">{targets.length} target{targets.length === 1 ? "" : "s"} available to you</p>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
