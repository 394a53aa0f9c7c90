"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { rotateKeyAction } from "@/lib/actions/keys";
import { Field, inputClass } from "../ui/field";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

export function RotateKeyButton() {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [reason, setReason] = useState("");
  const [outcome, setOutcome] = useState<{ ok: boolean; message: string; field?: string } | null>(null);
  return (
    <form
      className="space-y-3"
      onSubmit={(event) => {
        event.preventDefault();
        startTransition(async () => {
          const result = await rotateKeyAction({ reason });
          if (result.ok) {
            setReason("");
            setOutcome({ ok: true, message: `New key ${result.data.kid} is active.` });
            router.refresh();
          } else setOutcome({ ok: false, message: result.error, field: result.fieldErrors?.reason });
        });
      }}
    >
      {outcome && !outcome.field ? <Alert tone={outcome.ok ? "success" : "error"}>{outcome.message}</Alert> : null}
      <Field id="rotate-reason" label="Reason" help="Recorded in the audit trail." error={outcome?.field}>
        <input
          id="rotate-reason"
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          maxLength={500}
          className={inputClass}
          aria-invalid={Boolean(outcome?.field)}
        />
      </Field>
      <Button type="submit" variant="danger" disabled={pending || !hydrated}>
        {pending ? "Rotating…" : "Rotate signing key"}
      </Button>
    </form>
  );
}
