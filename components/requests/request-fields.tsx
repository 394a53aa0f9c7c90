import type { RequestField } from "@/lib/workflows/request-fields";

/**
 * What the requester asked for, field by field, labelled as the workflow's form labels it:
 * the approver decides on exactly what will be carried out. Used by the request page and
 * the approvals inbox.
 */
export function RequestFields({ fields, compact }: { fields: RequestField[]; compact?: boolean }) {
  return (
    <dl className={compact ? "grid gap-2 text-sm sm:grid-cols-2" : "grid gap-4 text-sm sm:grid-cols-2"} data-testid="request-fields">
      {fields.map((f) => (
        <div key={f.name} className={f.format === "text" && f.value.length < 80 ? "" : "sm:col-span-2"}>
          <dt className="text-slate-600">
            {f.label}
            {f.help && !compact ? <span className="sr-only"> ({f.help})</span> : null}
          </dt>
          <dd className="min-w-0 font-semibold break-words" data-testid={`field-${f.name}`}>
            {f.format === "json" ? (
              <pre className="mt-1 max-h-80 overflow-auto rounded-md bg-slate-100 p-2 font-mono text-xs font-normal whitespace-pre-wrap">{f.value}</pre>
            ) : (
              <span className={f.format === "multiline" || f.name === "justification" ? "font-normal whitespace-pre-wrap" : ""}>{f.value}</span>
            )}
          </dd>
        </div>
      ))}
    </dl>
  );
}
