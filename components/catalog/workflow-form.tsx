"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition, type FormEvent } from "react";
import { breakGlassAction, createRequestAction } from "@/lib/actions/requests";
import { fieldErrorsOf } from "@/lib/errors";
import type { FieldDescriptor } from "@/lib/workflows/fields";
import { WORKFLOW_SCHEMAS } from "@/lib/workflows/definitions";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { formatMinutes } from "../ui/format";
import { useHydrated } from "../ui/use-hydrated";
import { Field, inputClass } from "../ui/field";

export interface TargetOption {
  id: string;
  title: string;
  roles: string[];
  minMinutes: number;
  maxMinutes: number | null;
  stages: { name: string; groups: string[]; required: number; oneFromEachGroup: boolean }[];
  autoApprove: string[];
  breakGlass: { maxMinutes: number } | null;
}

type Value = string | string[] | boolean;

/** Per field, per target: the options an integration offers, or why they could not be loaded. */
export type IntegrationOptions = Record<string, Record<string, { options?: string[]; error?: string }>>;
type Errors = Record<string, string>;

function initialValue(field: FieldDescriptor, targets: TargetOption[]): Value {
  if (field.optionsFrom === "policy:targets") return targets[0]?.id ?? "";
  if (field.optionsFrom === "policy:roles") return targets[0]?.roles[0] ?? "";
  if (field.kind === "boolean") return field.defaultValue === true;
  if (field.kind === "multiselect") return [];
  if (field.kind === "duration") return "60";
  return field.defaultValue === undefined ? "" : String(field.defaultValue);
}

/**
 * A workflow's request form, generated from its schema's field descriptors. It validates
 * with the same zod schema as the server, plus the chosen target's policy bounds.
 */
export function WorkflowForm({
  workflowId,
  fields,
  targets,
  integrationOptions = {},
}: {
  workflowId: string;
  fields: FieldDescriptor[];
  targets: TargetOption[];
  integrationOptions?: IntegrationOptions;
}) {
  const router = useRouter();
  const ready = useHydrated();
  const [values, setValues] = useState<Record<string, Value>>(() => Object.fromEntries(fields.map((f) => [f.name, initialValue(f, targets)])));
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const [emergency, setEmergency] = useState(false);
  const [reason, setReason] = useState("");
  const target = targets.find((t) => t.id === values.targetId);

  const set = (name: string, value: Value) => {
    setValues((v) => {
      const next = { ...v, [name]: value };
      // A new target may offer other roles: keep the choice only if it still exists.
      const roleField = fields.find((f) => f.optionsFrom === "policy:roles");
      const newTarget = targets.find((t) => t.id === next.targetId);
      if (name === "targetId" && roleField && newTarget && !newTarget.roles.includes(String(next[roleField.name])))
        next[roleField.name] = newTarget.roles[0] ?? "";
      return next;
    });
    setErrors(({ [name]: _, ...rest }) => rest);
  };

  function validate(): Record<string, unknown> | undefined {
    const parsed = WORKFLOW_SCHEMAS[workflowId]!.safeParse(values);
    const found: Errors = parsed.success ? {} : fieldErrorsOf(parsed.error.issues);
    for (const field of fields) {
      if (field.kind === "duration" && target && target.maxMinutes !== null && !found[field.name]) {
        const minutes = Number(values[field.name]);
        if (minutes < target.minMinutes || minutes > target.maxMinutes) {
          found[field.name] =
            `Duration must be between ${formatMinutes(target.minMinutes * 60)} and ${formatMinutes(target.maxMinutes * 60)} for ${target.title}.`;
        }
      }
      if (field.optionsFrom === "policy:roles" && target && !found[field.name] && !target.roles.includes(String(values[field.name]))) {
        found[field.name] = `Role must be one of: ${target.roles.join(", ")}.`;
      }
    }
    setErrors(found);
    return parsed.success && Object.keys(found).length === 0 ? (parsed.data as Record<string, unknown>) : undefined;
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setFormError(null);
    const data = validate();
    if (!data) return;
    startTransition(async () => {
      const useBreakGlass = emergency && Boolean(target?.breakGlass);
      const result = useBreakGlass ? await breakGlassAction({ workflowId, input: data, reason }) : await createRequestAction({ workflowId, input: data });
      if (result.ok) {
        router.push(`/requests/${result.data.id}`);
        return;
      }
      setErrors(result.fieldErrors ?? {});
      setFormError(result.error);
    });
  }

  const aria = (name: string) => ({
    "aria-invalid": errors[name] ? true : undefined,
    "aria-describedby": [errors[name] ? `${name}-error` : "", `${name}-help`].filter(Boolean).join(" "),
  });

  function control(field: FieldDescriptor) {
    const value = values[field.name];
    const fromIntegration = field.optionsFrom?.startsWith("integration:") ? integrationOptions[field.name]?.[String(values.targetId)] : undefined;
    const plain = field.optionsFrom === "policy:roles" ? (target?.roles ?? []) : fromIntegration ? (fromIntegration.options ?? []) : (field.options ?? []);
    const options = field.optionsFrom === "policy:targets" ? targets.map((t) => ({ value: t.id, label: t.title })) : plain.map((o) => ({ value: o, label: o }));
    switch (field.kind) {
      case "longtext":
        return (
          <textarea
            id={field.name}
            name={field.name}
            rows={4}
            className={inputClass}
            placeholder={field.placeholder}
            value={String(value)}
            onChange={(e) => set(field.name, e.target.value)}
            {...aria(field.name)}
          />
        );
      case "number":
      case "duration":
        return (
          <input
            id={field.name}
            name={field.name}
            type="number"
            inputMode="numeric"
            className={inputClass}
            value={String(value)}
            onChange={(e) => set(field.name, e.target.value)}
            {...aria(field.name)}
          />
        );
      case "boolean":
        return (
          <label className="flex items-center gap-2 text-sm">
            <input id={field.name} type="checkbox" checked={value === true} onChange={(e) => set(field.name, e.target.checked)} {...aria(field.name)} />
            {field.label}
          </label>
        );
      case "multiselect":
        return (
          <div role="group" aria-labelledby={`${field.name}-label`} className="flex flex-wrap gap-4">
            {options.map((o) => (
              <label key={o.value} className="flex items-center gap-2 text-sm">
                <input
                  type="checkbox"
                  name={field.name}
                  value={o.value}
                  checked={(value as string[]).includes(o.value)}
                  onChange={(e) => set(field.name, e.target.checked ? [...(value as string[]), o.value] : (value as string[]).filter((v) => v !== o.value))}
                />
                {o.label}
              </label>
            ))}
          </div>
        );
      case "select":
        if (field.optionsFrom !== "policy:targets" && options.length <= 4) {
          return (
            <div role="radiogroup" aria-labelledby={`${field.name}-label`} className="flex gap-4">
              {options.map((o) => (
                <label key={o.value} className="flex items-center gap-2 text-sm">
                  <input type="radio" name={field.name} value={o.value} checked={value === o.value} onChange={() => set(field.name, o.value)} />
                  {o.label}
                </label>
              ))}
            </div>
          );
        }
        return (
          <select
            id={field.name}
            name={field.name}
            className={inputClass}
            value={String(value)}
            onChange={(e) => set(field.name, e.target.value)}
            {...aria(field.name)}
          >
            {options.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        );
      default:
        return (
          <input
            id={field.name}
            name={field.name}
            className={inputClass}
            placeholder={field.placeholder}
            value={String(value)}
            onChange={(e) => set(field.name, e.target.value)}
            {...aria(field.name)}
          />
        );
    }
  }

  return (
    <form onSubmit={onSubmit} noValidate className="space-y-5 rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      {formError ? <Alert tone="error">{formError}</Alert> : null}
      {fields.map((field) => {
        const help =
          field.kind === "duration" && target && target.maxMinutes !== null
            ? `Between ${formatMinutes(target.minMinutes * 60)} and ${formatMinutes(target.maxMinutes * 60)} for this target. ${field.help ?? ""}`
            : field.help;
        return (
          <Field
            key={field.name}
            id={field.name}
            label={field.kind === "boolean" ? "" : field.label}
            help={help}
            error={
              errors[field.name] ??
              (field.optionsFrom?.startsWith("integration:") ? integrationOptions[field.name]?.[String(values.targetId)]?.error : undefined)
            }
          >
            {control(field)}
          </Field>
        );
      })}
      {target ? <ApprovalSummary target={target} /> : null}
      {target?.breakGlass ? (
        <fieldset className="space-y-2 rounded-md border border-rose-200 bg-rose-50 p-3">
          <legend className="px-1 text-sm font-semibold text-rose-800">Emergency (break-glass)</legend>
          <label className="flex items-center gap-2 text-sm text-rose-900">
            <input type="checkbox" checked={emergency} onChange={(e) => setEmergency(e.target.checked)} />
            Activate now without approval, at most {formatMinutes(target.breakGlass.maxMinutes * 60)}. Approvers are told and must review it afterwards.
          </label>
          {emergency ? (
            <Field id="reason" label="What is the emergency?" error={errors.reason}>
              <input id="reason" className={inputClass} value={reason} onChange={(e) => setReason(e.target.value)} {...aria("reason")} />
            </Field>
          ) : null}
        </fieldset>
      ) : null}
      <div className="flex justify-end">
        <Button type="submit" variant={emergency ? "danger" : "primary"} disabled={pending || !ready}>
          {pending ? "Submitting…" : emergency ? "Activate break-glass access" : "Submit request"}
        </Button>
      </div>
    </form>
  );
}

function ApprovalSummary({ target }: { target: TargetOption }) {
  return (
    <div className="rounded-md bg-slate-50 p-3 text-sm text-slate-700">
      <p className="font-semibold">Approval</p>
      <ol className="mt-1 list-decimal space-y-0.5 pl-5">
        {target.stages.map((st) => (
          <li key={st.name}>
            {st.name}: {st.oneFromEachGroup ? `one approver from each of ${st.groups.join(", ")}` : `${st.required} of ${st.groups.join(", ")}`}
          </li>
        ))}
      </ol>
      {target.autoApprove.length > 0 ? (
        <p className="mt-1 text-xs text-slate-600">Some requests are approved automatically by policy ({target.autoApprove.join(", ")}).</p>
      ) : null}
    </div>
  );
}
