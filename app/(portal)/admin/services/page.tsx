import type { Metadata } from "next";
import { Alert } from "@/components/ui/alert";
import { NewServiceForm, ServiceSettingsForm } from "@/components/admin/service-forms";
import { ServiceChangeDecision } from "@/components/admin/service-change-decision";
import { TokenForm } from "@/components/tokens/token-form";
import { TokenTable } from "@/components/tokens/token-table";
import { EmptyState } from "@/components/ui/empty-state";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { listServiceIdentities } from "@/lib/identity/service-identities";
import { pendingServiceChanges } from "@/lib/identity/service-changes";
import { SCOPES } from "@/lib/identity/tokens";
import { policy } from "@/lib/policy/current";
import { createServiceTokenAction } from "@/lib/actions/services";

export const metadata: Metadata = { title: "Service identities" };

export default async function ServicesPage() {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">Administration is open to admins only.</Alert>;
  const services = await listServiceIdentities();
  const changes = await pendingServiceChanges();
  const groups = Object.entries(policy().roles).map(([name, roles]) => ({ name, roles }));
  const scopes = Object.entries(SCOPES).map(([name, description]) => ({ name, description }));
  return (
    <div className="space-y-8">
      <div>
        <h1 className="text-2xl font-bold tracking-tight">Service identities</h1>
        <p className="mt-1 text-slate-600">
          CI jobs, bots and AI agents act through service tokens. They go through the same policy and approvals as people, can never approve their own requests,
          and every step they take is audited as a service token.
        </p>
      </div>
      {changes.length ? (
        <section aria-labelledby="waiting-changes" className="rounded-lg border border-amber-200 bg-amber-50 p-6">
          <h2 id="waiting-changes" className="text-lg font-semibold">
            Waiting for another admin
          </h2>
          <p className="mt-1 text-sm text-slate-700">
            These would let a service identity approve requests. An admin other than the one who asked, and not one of its owners, must approve each.
          </p>
          <ul className="mt-4 space-y-4">
            {changes.map((c) => (
              <li key={c.id} data-testid="service-change" className="rounded-md border border-amber-200 bg-white p-4">
                <p className="text-sm">
                  <span className="font-semibold">{c.kind === "create" ? `Create ${c.name}` : `Change ${c.name}`}</span>: groups {c.groups.join(", ")}
                  {c.requestOnly ? ", request only" : ""}. Asked by {c.requestedBy}.
                </p>
                <ServiceChangeDecision changeId={c.id} name={c.name} mine={c.requestedById === who.id} />
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {services.length === 0 ? (
        <EmptyState title="No service identities yet">Create one below for each pipeline or agent, so the audit trail says which one acted.</EmptyState>
      ) : (
        services.map((s) => (
          <section key={s.id} aria-labelledby={`svc-${s.id}`} data-testid="service" className="rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
            <div className="flex flex-wrap items-baseline justify-between gap-2">
              <h2 id={`svc-${s.id}`} className="text-lg font-semibold">
                {s.name} <span className="font-mono text-xs font-normal text-slate-600">{s.email}</span>
              </h2>
              <span className="text-sm text-slate-600">
                roles: {s.roles.join(", ") || "none"}
                {s.requestOnly ? <span className="ml-2 rounded bg-amber-100 px-1.5 py-0.5 text-xs font-semibold text-amber-900">request only</span> : null}
              </span>
            </div>
            <p className="mt-1 text-sm text-slate-600">{s.description}</p>
            <p className="mt-1 mb-4 text-sm text-slate-600">Owners (one party with it): {s.owners.map((o) => o.owner.email).join(", ") || "none"}</p>
            {s.apiTokens.length ? <TokenTable tokens={s.apiTokens} /> : <p className="text-sm text-slate-600">No tokens yet.</p>}
            <div className="mt-4 grid gap-6 md:grid-cols-2">
              <details className="rounded-md border border-slate-200 p-4">
                <summary className="cursor-pointer text-sm font-semibold">New token for {s.name}</summary>
                <div className="mt-4">
                  <TokenForm action={createServiceTokenAction} extra={{ serviceId: s.id }} scopes={scopes} maxDays={365} idPrefix={`token-${s.id}`} />
                </div>
              </details>
              <details className="rounded-md border border-slate-200 p-4">
                <summary className="cursor-pointer text-sm font-semibold">Groups and request-only</summary>
                <div className="mt-4">
                  <ServiceSettingsForm serviceId={s.id} name={s.name ?? s.email} groups={groups} chosen={s.groups} requestOnly={s.requestOnly} />
                </div>
              </details>
            </div>
          </section>
        ))
      )}
      <section aria-labelledby="new-service" className="max-w-xl rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
        <h2 id="new-service" className="mb-4 text-lg font-semibold">
          New service identity
        </h2>
        <NewServiceForm groups={groups} />
      </section>
    </div>
  );
}
