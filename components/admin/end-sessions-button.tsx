"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { endSessionsAction } from "@/lib/actions/users";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

export function EndSessionsButton({ userId, email }: { userId: string; email: string }) {
  const router = useRouter();
  const [message, setMessage] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();
  return (
    <div className="flex items-center gap-3">
      <Button
        variant="secondary"
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            const result = await endSessionsAction({ userId });
            setMessage(
              result.ok
                ? `Ended ${result.data.ended} session(s)${result.data.tokensRevoked ? ` and revoked ${result.data.tokensRevoked} API token(s)` : ""}.`
                : result.error,
            );
            router.refresh();
          })
        }
      >
        {/* The person's address completes the name for screen readers; the visible words start it, as WCAG's label-in-name asks. */}
        {pending ? "Ending…" : "End sessions"}
        <span className="sr-only"> of {email}</span>
      </Button>
      {message ? (
        <span role="status" className="text-xs text-slate-600">
          {message}
        </span>
      ) : null}
    </div>
  );
}
