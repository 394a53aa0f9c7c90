"use client";

// A second admin approves or rejects a change that would let a service identity approve; the admin who asked may only withdraw it.
import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { decideServiceChangeAction } from "@/lib/actions/services";
import { inputClass } from "../ui/field";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

export function ServiceChangeDecision({ changeId, name, mine }: { changeId: string; name: string; mine: boolean }) {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [comment, setComment] = useState("");
  const [failure, setFailure] = useState<string | null>(null);
  const decide = (decision: "approve" | "reject") =>
    startTransition(async () => {
      const result = await decideServiceChangeAction({ changeId, decision, comment });
      setFailure(result.ok ? null : result.error);
      if (result.ok) router.refresh();
    });
  return (
    <div className="mt-2 space-y-2">
      {failure ? <Alert tone="error">{failure}</Alert> : null}
      <label htmlFor={`change-comment-${changeId}`} className="block text-sm font-semibold text-slate-800">
        Comment on the change to {name}
      </label>
      <input id={`change-comment-${changeId}`} value={comment} onChange={(e) => setComment(e.target.value)} maxLength={1000} className={inputClass} />
      <div className="flex gap-2">
        {mine ? null : (
          <Button type="button" disabled={pending || !hydrated} onClick={() => decide("approve")}>
            Approve change
          </Button>
        )}
        <Button type="button" variant="secondary" disabled={pending || !hydrated} onClick={() => decide("reject")}>
          {mine ? "Withdraw" : "Reject change"}
        </Button>
      </div>
    </div>
  );
}
