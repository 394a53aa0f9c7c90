"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { cancelAction, decideAction, extendAction, reviewBreakGlassAction, revokeAction } from "@/lib/actions/requests";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";
import { inputClass } from "../ui/field";

/** Approve or reject with a comment. The server decides whether this person may. */
export function DecisionPanel({ requestId }: { requestId: string }) {
  const router = useRouter();
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const [deciding, setDeciding] = useState<"approve" | "reject" | null>(null);
  const hydrated = useHydrated();
  const submit = (decision: "approve" | "reject") =>
    startTransition(async () => {
      setDeciding(decision);
      setError(null);
      const result = await decideAction({ requestId, decision, comment });
      if (!result.ok) setError(result.fieldErrors?.comment ?? result.error);
      router.refresh();
    });
  return (
    <section aria-labelledby="decide" className="space-y-3 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
      <h2 id="decide" className="font-semibold">
        Your decision
      </h2>
      {error ? <Alert tone="error">{error}</Alert> : null}
      <label htmlFor="comment" className="block text-sm font-semibold">
        Comment <span className="font-normal text-slate-600">(required to reject)</span>
      </label>
      <textarea id="comment" rows={3} className={inputClass} value={comment} onChange={(e) => setComment(e.target.value)} />
      <div className="flex gap-3">
        <Button variant="success" disabled={pending || !hydrated} onClick={() => submit("approve")}>
          {pending && deciding === "approve" ? "Approving…" : "Approve"}
        </Button>
        <Button variant="danger" disabled={pending || !hydrated} onClick={() => submit("reject")}>
          {pending && deciding === "reject" ? "Rejecting…" : "Reject"}
        </Button>
      </div>
    </section>
  );
}

/** A button that runs one server action, shows progress, and shows the refusal if any. */
function ActionButton({
  label,
  busyLabel,
  variant,
  confirm,
  run,
}: {
  label: string;
  busyLabel: string;
  variant: "danger" | "secondary";
  confirm?: string;
  run: () => Promise<{ ok: boolean; error?: string }>;
}) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();
  return (
    <div className="space-y-2">
      {error ? <Alert tone="error">{error}</Alert> : null}
      <Button
        variant={variant}
        disabled={pending || !hydrated}
        onClick={() => {
          if (confirm && !window.confirm(confirm)) return;
          startTransition(async () => {
            const result = await run();
            if (!result.ok) setError(result.error ?? "That did not work.");
            router.refresh();
          });
        }}
      >
        {pending ? busyLabel : label}
      </Button>
    </div>
  );
}

export function RevokeButton({ requestId }: { requestId: string }) {
  return (
    <ActionButton
      label="Revoke now"
      busyLabel="Revoking…"
      variant="danger"
      confirm="Revoke this grant now? The credential stops working at once."
      run={() => revokeAction({ requestId, reason: "revoked early from the portal" })}
    />
  );
}

export function CancelButton({ requestId }: { requestId: string }) {
  return <ActionButton label="Cancel request" busyLabel="Cancelling…" variant="secondary" run={() => cancelAction({ requestId })} />;
}

/** Sign off a break-glass grant after the fact. */
export function ReviewPanel({ requestId }: { requestId: string }) {
  const router = useRouter();
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();
  return (
    <section aria-labelledby="review" className="space-y-3 rounded-lg border border-rose-200 bg-white p-5 shadow-sm">
      <h2 id="review" className="font-semibold">
        Review this break-glass grant
      </h2>
      {error ? <Alert tone="error">{error}</Alert> : null}
      <label htmlFor="review-comment" className="block text-sm font-semibold">
        What you checked
      </label>
      <textarea id="review-comment" rows={3} className={inputClass} value={comment} onChange={(e) => setComment(e.target.value)} />
      <Button
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            setError(null);
            const result = await reviewBreakGlassAction({ requestId, comment });
            if (!result.ok) setError(result.fieldErrors?.comment ?? result.error);
            router.refresh();
          })
        }
      >
        {pending ? "Signing off…" : "Sign off"}
      </Button>
    </section>
  );
}

/** Ask for more time: a new request under the same policy that replaces this grant once approved. */
export function ExtendPanel({ requestId }: { requestId: string }) {
  const router = useRouter();
  const [open, setOpen] = useState(false);
  const [minutes, setMinutes] = useState("60");
  const [justification, setJustification] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();
  if (!open) {
    return (
      <Button variant="secondary" disabled={!hydrated} onClick={() => setOpen(true)}>
        Ask to extend
      </Button>
    );
  }
  return (
    <div className="space-y-3 rounded-md border border-slate-200 p-4">
      {error ? <Alert tone="error">{error}</Alert> : null}
      <label htmlFor="extend-minutes" className="block text-sm font-semibold">
        New duration (minutes, from approval)
      </label>
      <input
        id="extend-minutes"
        type="number"
        className={inputClass}
        value={minutes}
        onChange={(e) => setMinutes(e.target.value)}
        aria-invalid={errors.durationMinutes ? true : undefined}
      />
      {errors.durationMinutes ? <p className="text-sm text-rose-700">{errors.durationMinutes}</p> : null}
      <label htmlFor="extend-justification" className="block text-sm font-semibold">
        Why you need more time
      </label>
      <textarea id="extend-justification" rows={2} className={inputClass} value={justification} onChange={(e) => setJustification(e.target.value)} />
      {errors.justification ? <p className="text-sm text-rose-700">{errors.justification}</p> : null}
      <Button
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            setError(null);
            const result = await extendAction({ requestId, durationMinutes: Number(minutes), justification });
            if (result.ok) {
              router.push(`/requests/${result.data.id}`);
              return;
            }
            setErrors(result.fieldErrors ?? {});
            setError(result.error);
          })
        }
      >
        {pending ? "Sending…" : "Send extension request"}
      </Button>
    </div>
  );
}
