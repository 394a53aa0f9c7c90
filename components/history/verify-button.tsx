"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { verifyChainAction } from "@/lib/actions/audit";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

export function VerifyChainButton() {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [outcome, setOutcome] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  return (
    <div className="space-y-3">
      <Button
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            const result = await verifyChainAction({});
            if (!result.ok) setOutcome({ tone: "error", text: result.error });
            else if (result.data.ok) setOutcome({ tone: "success", text: `Intact: ${result.data.eventsChecked} events checked.` });
            else
              setOutcome({
                tone: "error",
                text:
                  result.data.outcome === "unverifiable" ? `Cannot check in full (not tampering): ${result.data.problem}` : `Broken: ${result.data.problem}`,
              });
            router.refresh();
          })
        }
      >
        {pending ? "Verifying… (a large history takes a while)" : "Verify now"}
      </Button>
      {outcome ? <Alert tone={outcome.tone}>{outcome.text}</Alert> : null}
    </div>
  );
}
