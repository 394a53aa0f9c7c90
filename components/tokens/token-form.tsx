"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import type { Result } from "@/lib/errors";
import { Field, inputClass } from "../ui/field";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { CopyButton } from "../ui/copy-button";
import { useHydrated } from "../ui/use-hydrated";

export interface ScopeOption {
  name: string;
  description: string;
}

type TokenFields = { name: unknown; scopes: unknown; expiresInDays: unknown };

/**
 * Makes an API token and shows its secret once, with a copy button. The server validates
 * everything again; errors appear beside their field.
 */
export function TokenForm<E extends Record<string, string>>({
  action,
  scopes,
  extra,
  maxDays,
  idPrefix = "token",
}: {
  action: (input: E & TokenFields) => Promise<Result<{ secret: string; token: { name: string } }>>;
  scopes: ScopeOption[];
  extra: E;
  maxDays: number;
  idPrefix?: string;
}) {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [created, setCreated] = useState<{ secret: string; name: string } | null>(null);
  const id = (name: string) => `${idPrefix}-${name}`;

  if (created) {
    return (
      <div className="space-y-3" data-testid="new-token">
        <Alert tone="warning">Copy the token for “{created.name}” now: Latchkey keeps only its hash and will not show it again.</Alert>
        <input
          readOnly
          aria-label="New API token"
          data-testid="token-secret"
          value={created.secret}
          className={`${inputClass} font-mono`}
          onFocus={(e) => e.currentTarget.select()}
        />
        <div className="flex gap-3">
          <CopyButton value={created.secret} label="Copy token" />
          <Button variant="secondary" onClick={() => setCreated(null)}>
            Done
          </Button>
        </div>
      </div>
    );
  }

  return (
    <form
      className="space-y-4"
      noValidate
      onSubmit={(event) => {
        event.preventDefault();
        const form = new FormData(event.currentTarget);
        const input = {
          ...extra,
          name: String(form.get("name") ?? ""),
          scopes: form.getAll("scopes").map(String),
          expiresInDays: Number(form.get("expiresInDays")),
        };
        const local: Record<string, string> = {};
        if (!input.name.trim()) local.name = "Name the token after what will use it.";
        if (input.scopes.length === 0) local.scopes = "Choose at least one scope.";
        setErrors(local);
        setFailure(null);
        if (Object.keys(local).length) return;
        startTransition(async () => {
          const result = await action(input);
          if (result.ok) {
            setCreated({ secret: result.data.secret, name: result.data.token.name });
            (event.target as HTMLFormElement).reset();
            router.refresh();
          } else {
            setErrors(result.fieldErrors ?? {});
            setFailure(result.error);
          }
        });
      }}
    >
      {failure ? <Alert tone="error">{failure}</Alert> : null}
      <Field id={id("name")} label="Name" help="What will use it, e.g. “deploy pipeline” or “my laptop CLI”." error={errors.name}>
        <input
          id={id("name")}
          name="name"
          maxLength={80}
          className={inputClass}
          aria-invalid={Boolean(errors.name)}
          aria-describedby={errors.name ? `${id("name")}-error` : `${id("name")}-help`}
        />
      </Field>
      <fieldset aria-describedby={errors.scopes ? `${id("scopes")}-error` : undefined}>
        <legend className="block text-sm font-semibold text-slate-800">Scopes</legend>
        <p className="text-xs text-slate-600">Grant only what it needs. A token never approves what its own identity asked for.</p>
        <div className="mt-2 space-y-1.5">
          {scopes.map((s) => (
            <label key={s.name} className="flex items-start gap-2 text-sm">
              <input type="checkbox" name="scopes" value={s.name} className="mt-0.5" />
              <span>
                <span className="font-mono text-xs font-semibold">{s.name}</span> <span className="text-slate-600">{s.description}</span>
              </span>
            </label>
          ))}
        </div>
        {errors.scopes ? (
          <p id={`${id("scopes")}-error`} className="mt-1 text-sm font-medium text-rose-700">
            {errors.scopes}
          </p>
        ) : null}
      </fieldset>
      <Field id={id("days")} label="Expires after" error={errors.expiresInDays}>
        <select id={id("days")} name="expiresInDays" defaultValue="30" className={inputClass}>
          {[1, 7, 30, 90, 180, 365]
            .filter((d) => d <= maxDays)
            .map((d) => (
              <option key={d} value={d}>
                {d === 1 ? "1 day" : `${d} days`}
              </option>
            ))}
        </select>
      </Field>
      <Button type="submit" disabled={pending || !hydrated}>
        {pending ? "Creating…" : "Create token"}
      </Button>
    </form>
  );
}
