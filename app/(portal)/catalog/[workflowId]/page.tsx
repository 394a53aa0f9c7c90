import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { WorkflowForm, type IntegrationOptions, type TargetOption } from "@/components/catalog/workflow-form";
import { describeFields, type FieldDescriptor } from "@/lib/workflows/fields";
import { resolveOptions } from "@/lib/workflows/option-sources";
import type { Principal } from "@/lib/policy/evaluate";
import { EmptyState } from "@/components/ui/empty-state";
import { Alert } from "@/components/ui/alert";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { availabilityFor } from "@/lib/workflows/catalog";
import { policy } from "@/lib/policy/current";
import { breakGlassRefusal, requestableTargets } from "@/lib/policy/evaluate";
import { getWorkflow } from "@/lib/workflows/registry";
import { queryParam, type PageSearch } from "@/lib/http/query-param";

export const metadata: Metadata = { title: "New request" };

export default async function WorkflowPage({ params, searchParams }: { params: Promise<{ workflowId: string }>; searchParams: Promise<PageSearch> }) {
  const { workflowId } = await params;
  const preferred = queryParam((await searchParams).target);
  const who = await requirePrincipal();
  const workflow = getWorkflow(workflowId);
  if (!workflow) notFound();
  const requestable = requestableTargets(policy(), workflow.id, who).map((t) => ({ ...t, ...availabilityFor(workflow.id, t.target, who) }));
  const unavailable = requestable.filter((t) => !t.available);
  const targets: TargetOption[] = requestable
    .filter((t) => t.available)
    .map(({ targetId, target, rule }) => ({
      id: targetId,
      title: target.title,
      roles: rule.roles ?? [],
      minMinutes: Math.ceil(rule.minDuration / 60),
      maxMinutes: rule.maxDuration === undefined ? null : Math.floor(rule.maxDuration / 60),
      stages: rule.stages.map((st) => ({ name: st.name, groups: st.groups, required: st.required, oneFromEachGroup: st.oneFromEachGroup })),
      autoApprove: rule.autoApprove.map((a) => a.name),
      breakGlass: rule.breakGlass && breakGlassRefusal(rule, who, 0) === null ? { maxMinutes: Math.floor(rule.breakGlass.maxDuration / 60) } : null,
    }));
  const fields = describeFields(workflow.inputSchema);
  return (
    <div className="max-w-2xl">
      <Link href="/catalog" className="text-sm text-slate-600 hover:underline">
        ← Catalog
      </Link>
      <h1 className="mt-2 text-2xl font-bold tracking-tight">{workflow.title}</h1>
      <p className="mt-1 mb-6 text-slate-600">{workflow.description}</p>
      {unavailable.length ? (
        <div className="mb-6 space-y-2" data-testid="unavailable">
          {unavailable.map((t) => (
            <Alert key={t.targetId} tone="warning">
              <strong>{t.target.title}</strong> is unavailable: {t.unavailableReason}
              {hasRole(who, "admin") ? (
                <>
                  {" "}
                  <Link href="/admin/integrations" className="font-semibold underline">
                    Admin → Integrations
                  </Link>
                </>
              ) : null}
            </Alert>
          ))}
        </div>
      ) : null}
      {targets.length === 0 ? (
        unavailable.length ? null : (
          <EmptyState title="No target available to you">The policy does not let your groups request this workflow.</EmptyState>
        )
      ) : (
        <WorkflowForm
          workflowId={workflow.id}
          fields={fields}
          integrationOptions={await integrationOptions(fields, targets, who)}
          // The preferred target (from "recently used") comes first, so it is preselected.
          targets={[...targets].sort((a, b) => Number(b.id === preferred) - Number(a.id === preferred))}
        />
      )}
    </div>
  );
}

/** For fields whose options come from an integration: the options per target, or why they could not be loaded. */
async function integrationOptions(fields: FieldDescriptor[], targets: TargetOption[], who: Principal): Promise<IntegrationOptions> {
  const result: IntegrationOptions = {};
  for (const field of fields) {
    if (!field.optionsFrom?.startsWith("integration:")) continue;
    const source = field.optionsFrom.slice("integration:".length);
    result[field.name] = Object.fromEntries(
      await Promise.all(
        targets.map(async (t) => {
          try {
            return [t.id, { options: await resolveOptions(source, { who, targetId: t.id }) }] as const;
          } catch (error) {
            return [t.id, { error: `The options could not be loaded: ${(error as Error).message}` }] as const;
          }
        }),
      ),
    );
  }
  return result;
}
