"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { offboardAction, reactivateAction } from "@/lib/actions/users";
import { inputClass } from "../ui/field";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

/** Offboards a person after the page has said what it will end; the server checks the role and does it. */
export function OffboardForm({ userId, email }: { userId: string; email: string }) {
  const router = useRouter();
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();
  return (
    <form
      className="space-y-3"
      onSubmit={(e) => {
        e.preventDefault();
        startTransition(async () => {
          const result = await offboardAction({ userId, reason });
          setMessage(
            result.ok
              ? {
                  tone: "success",
                  text: `Offboarded ${email}: ${result.data.revokedGrants} grant(s) revoked, ${result.data.cancelledRequests} request(s) cancelled, ${result.data.endedSessions} session(s) ended, ${result.data.revokedTokens} API token(s) revoked.`,
                }
              : { tone: "error", text: result.fieldErrors?.reason ?? result.error },
          );
          router.refresh();
        });
      }}
    >
      <label htmlFor="offboard-reason" className="block text-sm font-semibold">
        Why <span className="font-normal text-slate-600">(recorded with every step)</span>
      </label>
      <textarea id="offboard-reason" rows={2} className={inputClass} value={reason} onChange={(e) => setReason(e.target.value)} />
      <Button type="submit" variant="danger" disabled={pending || !hydrated}>
        {pending ? "Offboarding…" : `Offboard ${email}`}
      </Button>
      {message ? <Alert tone={message.tone}>{message.text}</Alert> : null}
    </form>
  );
}

export function ReactivateButton({ userId, email }: { userId: string; email: string }) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();
  return (
    <div className="space-y-2">
      <Button
        variant="secondary"
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            const result = await reactivateAction({ userId });
            setError(result.ok ? null : result.error);
            router.refresh();
          })
        }
      >
        {pending ? "Reactivating…" : `Reactivate ${email}`}
      </Button>
      {error ? <Alert tone="error">{error}</Alert> : null}
    </div>
  );
}
