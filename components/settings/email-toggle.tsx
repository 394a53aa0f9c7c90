"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { setEmailNotificationsAction } from "@/lib/actions/notifications";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

/** Turns the signed-in person's notification e-mail on or off. */
export function EmailToggle({ enabled }: { enabled: boolean }) {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [error, setError] = useState<string | null>(null);
  return (
    <div className="flex flex-wrap items-center gap-3">
      <p data-testid="email-state">
        E-mail notifications are <strong>{enabled ? "on" : "off"}</strong>.
      </p>
      <Button
        variant={enabled ? "secondary" : "primary"}
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            const result = await setEmailNotificationsAction({ enabled: !enabled });
            setError(result.ok ? null : result.error);
            router.refresh();
          })
        }
      >
        {pending ? "Saving…" : enabled ? "Turn e-mail off" : "Turn e-mail on"}
      </Button>
      {error ? (
        <span role="alert" className="text-sm text-rose-700">
          {error}
        </span>
      ) : null}
    </div>
  );
}
