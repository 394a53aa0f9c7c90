"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition, type FormEvent } from "react";
import { breakGlassAction, createRequestAction } from "@/app/(portal)/requests/actions";
import { temporaryAccessSchema } from "@/lib/workflows/temporary-access/schema";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { formatMinutes } from "../ui/format";
import { useHydrated } from "../ui/use-hydrated";
import { Field, inputClass } from "./field";

export interface TargetOption {
  id: string;
  title: string;
  environment: string;
  roles: string[];
  minMinutes: number;
  maxMinutes: number;
  stages: { name: string; groups: string[]; required: number; oneFromEachGroup: boolean }[];
  autoApprove: string[];
  breakGlass: { maxMinutes: number } | null;
}

type Errors = Record<string, string>;

/** Checks the form as the server will: the shared schema, then the target's policy bounds. */
function validate(values: Record<string, string>, target: TargetOption | undefined): { errors: Errors; data?: Record<string, unknown> } {
  const parsed = temporaryAccessSchema.safeParse(values);
  const errors: Errors = {};
  if (!parsed.success) for (const issue of parsed.error.issues) errors[String(issue.path[0])] ??= issue.message;
  if (target) {
    if (!errors.role && !target.roles.includes(values.role ?? "")) errors.role = `Role must be one of: ${target.roles.join(", ")}.`;
    const minutes = Number(values.durationMinutes);
    if (!errors.durationMinutes && (minutes < target.minMinutes || minutes > target.maxMinutes)) {
      errors.durationMinutes = `Duration must be between ${formatMinutes(target.minMinutes * 60)} and ${formatMinutes(target.maxMinutes * 60)} for ${target.title}.`;
    }
  }
  return parsed.success && Object.keys(errors).length === 0 ? { errors, data: parsed.data } : { errors };
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
      {target.autoApprove.length > 0 ? <p className="mt-1 text-xs text-slate-500">Some requests are approved automatically by policy ({target.autoApprove.join(", ")}).</p> : null}
    </div>
  );
}

export function TemporaryAccessForm({ workflowId, targets }: { workflowId: string; targets: TargetOption[] }) {
  const router = useRouter();
  const [values, setValues] = useState<Record<string, string>>({ targetId: targets[0]?.id ?? "", role: targets[0]?.roles[0] ?? "", durationMinutes: "60", justification: "" });
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const ready = useHydrated();
  const target = targets.find((t) => t.id === values.targetId);
  const [emergency, setEmergency] = useState(false);
  const [reason, setReason] = useState("");

  const set = (name: string, value: string) => {
    setValues((v) => ({ ...v, [name]: value }));
    setErrors(({ [name]: _, ...rest }) => rest);
  };

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setFormError(null);
    const { errors: found, data } = validate(values, target);
    setErrors(found);
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

  return (
    <form onSubmit={onSubmit} noValidate className="space-y-5 rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      {formError ? <Alert tone="error">{formError}</Alert> : null}
      <Field id="targetId" label="Target" help="The service and environment you need." error={errors.targetId}>
        <select id="targetId" name="targetId" className={inputClass} value={values.targetId} onChange={(e) => set("targetId", e.target.value)} {...aria("targetId")}>
          {targets.map((t) => (
            <option key={t.id} value={t.id}>
              {t.title}
            </option>
          ))}
        </select>
      </Field>
      <Field id="role" label="Role" help="Ask for the least you need." error={errors.role}>
        <div role="radiogroup" aria-labelledby="role" className="flex gap-4">
          {(target?.roles ?? []).map((r) => (
            <label key={r} className="flex items-center gap-2 text-sm">
              <input type="radio" name="role" value={r} checked={values.role === r} onChange={() => set("role", r)} />
              {r}
            </label>
          ))}
        </div>
      </Field>
      <Field
        id="durationMinutes"
        label="Duration (minutes)"
        help={target ? `Between ${formatMinutes(target.minMinutes * 60)} and ${formatMinutes(target.maxMinutes * 60)} for this target. The clock starts when the request is approved.` : undefined}
        error={errors.durationMinutes}
      >
        <input
          id="durationMinutes"
          name="durationMinutes"
          type="number"
          inputMode="numeric"
          className={inputClass}
          value={values.durationMinutes}
          onChange={(e) => set("durationMinutes", e.target.value)}
          {...aria("durationMinutes")}
        />
      </Field>
      <Field id="justification" label="Justification" help="Why you need it: a ticket, an incident, a task. Approvers and auditors read this." error={errors.justification}>
        <textarea
          id="justification"
          name="justification"
          rows={4}
          className={inputClass}
          value={values.justification}
          onChange={(e) => set("justification", e.target.value)}
          {...aria("justification")}
        />
      </Field>
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
