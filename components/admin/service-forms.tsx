"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { createServiceAction, updateServiceAction } from "@/lib/actions/services";
import { Field, inputClass } from "../ui/field";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

function GroupChoices({ id, groups, chosen, error }: { id: string; groups: { name: string; roles: string[] }[]; chosen: string[]; error?: string }) {
  return (
    <fieldset aria-describedby={error ? `${id}-error` : undefined}>
      <legend className="block text-sm font-semibold text-slate-800">Groups</legend>
      <p className="text-xs text-slate-600">Its roles follow from these groups through the policy, as a person&apos;s do.</p>
      <div className="mt-2 grid grid-cols-2 gap-1.5">
        {groups.map((g) => (
          <label key={g.name} className="flex items-center gap-2 text-sm">
            <input type="checkbox" name="groups" value={g.name} defaultChecked={chosen.includes(g.name)} />
            <span>
              {g.name} <span className="text-xs text-slate-600">({g.roles.join(", ")})</span>
            </span>
          </label>
        ))}
      </div>
      {error ? (
        <p id={`${id}-error`} className="mt-1 text-sm font-medium text-rose-700">
          {error}
        </p>
      ) : null}
    </fieldset>
  );
}

function RequestOnly({ defaultChecked }: { defaultChecked: boolean }) {
  return (
    <label className="flex items-start gap-2 text-sm">
      <input type="checkbox" name="requestOnly" defaultChecked={defaultChecked} className="mt-0.5" />
      <span>
        <span className="font-semibold">Request only</span>{" "}
        <span className="text-slate-600">
          — it may make requests but never approve, reject or review, whatever its groups. Without it, an identity in an approver group needs another
          admin&apos;s approval.
        </span>
      </span>
    </label>
  );
}

export function NewServiceForm({ groups }: { groups: { name: string; roles: string[] }[] }) {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [proposed, setProposed] = useState<string | null>(null);
  return (
    <form
      className="space-y-4"
      noValidate
      onSubmit={(event) => {
        event.preventDefault();
        const form = new FormData(event.currentTarget);
        const target = event.currentTarget;
        startTransition(async () => {
          const result = await createServiceAction({
            name: String(form.get("name") ?? ""),
            description: String(form.get("description") ?? ""),
            groups: form.getAll("groups").map(String),
            requestOnly: form.get("requestOnly") === "on",
            owners: String(form.get("owners") ?? "")
              .split(/[\s,]+/)
              .filter(Boolean),
          });
          if (result.ok) {
            target.reset();
            setErrors({});
            setFailure(null);
            setProposed(
              result.data.proposed
                ? `${String(form.get("name"))} could approve requests, so another admin must approve it before it exists. It is listed under "Waiting for another admin".`
                : null,
            );
            router.refresh();
          } else {
            setErrors(result.fieldErrors ?? {});
            setFailure(result.error);
          }
        });
      }}
    >
      {failure ? <Alert tone="error">{failure}</Alert> : null}
      {proposed ? <Alert tone="success">{proposed}</Alert> : null}
      <Field id="service-name" label="Name" help="Lower-case letters, digits and dashes, e.g. deploy-bot." error={errors.name}>
        <input id="service-name" name="name" maxLength={40} className={inputClass} aria-invalid={Boolean(errors.name)} />
      </Field>
      <Field id="service-description" label="What it is for" error={errors.description}>
        <input id="service-description" name="description" maxLength={300} className={inputClass} aria-invalid={Boolean(errors.description)} />
      </Field>
      <Field
        id="service-owners"
        label="Other owners (optional)"
        help="E-mail addresses of people answerable for it, besides you. Its owners and it count as one party: none of them can approve what another asked for."
        error={errors.owners}
      >
        <input id="service-owners" name="owners" className={inputClass} aria-invalid={Boolean(errors.owners)} />
      </Field>
      <GroupChoices id="service-groups" groups={groups} chosen={[]} error={errors.groups} />
      <RequestOnly defaultChecked />
      <Button type="submit" disabled={pending || !hydrated}>
        {pending ? "Creating…" : "Create service identity"}
      </Button>
    </form>
  );
}

export function ServiceSettingsForm({
  serviceId,
  name,
  groups,
  chosen,
  requestOnly,
}: {
  serviceId: string;
  name: string;
  groups: { name: string; roles: string[] }[];
  chosen: string[];
  requestOnly: boolean;
}) {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [outcome, setOutcome] = useState<{ ok: boolean; message: string } | null>(null);
  return (
    <form
      className="space-y-3"
      onSubmit={(event) => {
        event.preventDefault();
        const form = new FormData(event.currentTarget);
        startTransition(async () => {
          const result = await updateServiceAction({ serviceId, groups: form.getAll("groups").map(String), requestOnly: form.get("requestOnly") === "on" });
          const saved =
            result.ok && result.data.proposed ? `This would let ${name} approve, so another admin must approve the change first.` : `Saved ${name}.`;
          setOutcome(result.ok ? { ok: true, message: saved } : { ok: false, message: result.fieldErrors?.groups ?? result.error });
          router.refresh();
        });
      }}
    >
      {outcome ? <Alert tone={outcome.ok ? "success" : "error"}>{outcome.message}</Alert> : null}
      <GroupChoices id={`groups-${serviceId}`} groups={groups} chosen={chosen} />
      <RequestOnly defaultChecked={requestOnly} />
      <Button type="submit" variant="secondary" disabled={pending || !hydrated}>
        {pending ? "Saving…" : "Save"}
      </Button>
    </form>
  );
}
