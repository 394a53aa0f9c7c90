import Link from "next/link";
import { HISTORY_STATUSES } from "@/lib/history/filters";
import { db } from "@/lib/db";
import { policy } from "@/lib/policy/current";
import { listWorkflows } from "@/lib/workflows/registry";
import { inputClass } from "../ui/field";
import { ACTION_LABELS } from "../requests/timeline";

function Select({ name, label, value, options }: { name: string; label: string; value?: string; options: { value: string; label: string }[] }) {
  return (
    <label className="text-sm font-semibold">
      {label}
      <select name={name} defaultValue={value ?? ""} className={inputClass}>
        <option value="">any</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
}

/** The auditor's filters as a plain GET form: works without JavaScript, every field labelled. */
export async function HistoryFilterForm({ values, action = "/history" }: { values: Record<string, string>; action?: string }) {
  const p = policy();
  const people = await db.user.findMany({ select: { email: true }, orderBy: { email: "asc" }, take: 2000 });
  const environments = [...new Set(Object.values(p.targets).map((t) => t.environment))].sort();
  return (
    <form
      method="get"
      action={action}
      aria-label="Filters"
      className="mb-6 grid grid-cols-2 gap-3 rounded-lg border border-slate-200 bg-white p-4 shadow-sm md:grid-cols-4 lg:grid-cols-6"
    >
      <datalist id="people">
        {people.map((u) => (
          <option key={u.email} value={u.email} />
        ))}
      </datalist>
      <label className="text-sm font-semibold lg:col-span-2">
        Actor
        <input name="actor" list="people" defaultValue={values.actor} placeholder="e-mail" className={inputClass} />
      </label>
      <label className="text-sm font-semibold lg:col-span-2">
        Approved by
        <input name="approver" list="people" defaultValue={values.approver} placeholder="e-mail" className={inputClass} />
      </label>
      <label className="text-sm font-semibold lg:col-span-2">
        Text
        <input name="q" type="search" defaultValue={values.q} placeholder="justification, comment, reason…" className={inputClass} />
      </label>
      <Select name="workflow" label="Workflow" value={values.workflow} options={listWorkflows().map((w) => ({ value: w.id, label: w.title }))} />
      <Select name="target" label="Target" value={values.target} options={Object.entries(p.targets).map(([id, t]) => ({ value: id, label: t.title }))} />
      <Select name="environment" label="Environment" value={values.environment} options={environments.map((e) => ({ value: e, label: e }))} />
      <Select name="status" label="Status after" value={values.status} options={HISTORY_STATUSES.map((s) => ({ value: s, label: s }))} />
      <Select name="action" label="Event" value={values.action} options={Object.entries(ACTION_LABELS).map(([value, label]) => ({ value, label }))} />
      <label className="text-sm font-semibold">
        Sort
        <select name="sort" defaultValue={values.sort ?? "newest"} className={inputClass}>
          <option value="newest">newest first</option>
          <option value="oldest">oldest first</option>
        </select>
      </label>
      <label className="text-sm font-semibold">
        From
        <input type="date" name="from" defaultValue={values.from} className={inputClass} />
      </label>
      <label className="text-sm font-semibold">
        To
        <input type="date" name="to" defaultValue={values.to} className={inputClass} />
      </label>
      <div className="col-span-2 flex items-end gap-2">
        <button type="submit" className="rounded-md bg-slate-900 px-3.5 py-2 text-sm font-semibold text-white hover:bg-slate-700">
          Filter
        </button>
        <Link href={action} className="px-2 py-2 text-sm text-slate-600 hover:underline">
          Clear
        </Link>
      </div>
    </form>
  );
}
