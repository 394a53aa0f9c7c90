"use client";

import { useRouter } from "next/navigation";
import { useState, useTransition } from "react";
import { revokeTokenAction } from "@/lib/actions/tokens";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

export function RevokeTokenButton({ tokenId, name }: { tokenId: string; name: string }) {
  const router = useRouter();
  const hydrated = useHydrated();
  const [pending, startTransition] = useTransition();
  const [error, setError] = useState<string | null>(null);
  return (
    <div className="flex items-center gap-2">
      <Button
        variant="danger"
        disabled={pending || !hydrated}
        aria-label={`Revoke token ${name}`}
        onClick={() => {
          if (!window.confirm(`Revoke “${name}”? Anything using it stops working at once.`)) return;
          startTransition(async () => {
            const result = await revokeTokenAction({ tokenId });
            if (!result.ok) setError(result.error);
            router.refresh();
          });
        }}
      >
        {pending ? "Revoking…" : "Revoke"}
      </Button>
      {error ? (
        <span role="alert" className="text-xs text-rose-700">
          {error}
        </span>
      ) : null}
    </div>
  );
}
