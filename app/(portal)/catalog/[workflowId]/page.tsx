import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { WorkflowForm, type IntegrationOptions, type TargetOption } from "@/components/requests/workflow-form";
import { describeFields, type FieldDescriptor } from "@/lib/workflows/fields";
import { resolveOptions } from "@/lib/workflows/option-sources";
import type { Principal } from "@/lib/policy/evaluate";
import type { z } from "zod";
import { EmptyState } from "@/components/ui/empty-state";
import { requirePrincipal } from "@/lib/auth/session";
import { policy } from "@/lib/policy/current";
import { breakGlassRefusal, requestableTargets } from "@/lib/policy/evaluate";
import { getWorkflow } from "@/lib/workflows/registry";

export const metadata: Metadata = { title: "New request" };

export default async function WorkflowPage({ params, searchParams }: { params: Promise<{ workflowId: string }>; searchParams: Promise<{ target?: string }> }) {
  const { workflowId } = await params;
  const { target: preferred } = await searchParams;
  const who = await requirePrincipal();
  const workflow = getWorkflow(workflowId);
  if (!workflow) notFound();
  const targets: TargetOption[] = requestableTargets(policy(), workflow.id, who).map(({ targetId, target, rule }) => ({
    id: targetId,
    title: target.title,
    roles: rule.roles ?? [],
    minMinutes: Math.ceil(rule.minDuration / 60),
    maxMinutes: rule.maxDuration === undefined ? null : Math.floor(rule.maxDuration / 60),
    stages: rule.stages.map((st) => ({ name: st.name, groups: st.groups, required: st.required, oneFromEachGroup: st.oneFromEachGroup })),
    autoApprove: rule.autoApprove.map((a) => a.name),
    breakGlass: rule.breakGlass && breakGlassRefusal(rule, who, 0) === null ? { maxMinutes: Math.floor(rule.breakGlass.maxDuration / 60) } : null,
  }));
  const fields = describeFields(workflow.inputSchema as unknown as z.ZodObject);
  return (
    <div className="max-w-2xl">
      <Link href="/catalog" className="text-sm text-slate-600 hover:underline">
        ← Catalog
      </Link>
      <h1 className="mt-2 text-2xl font-bold tracking-tight">{workflow.title}</h1>
      <p className="mt-1 mb-6 text-slate-600">{workflow.description}</p>
      {targets.length === 0 ? (
        <EmptyState title="No target available to you">The policy does not let your groups request this workflow.</EmptyState>
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
