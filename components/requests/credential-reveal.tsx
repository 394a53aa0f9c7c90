"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState, useTransition } from "react";
import { revealCredentialAction } from "@/lib/actions/requests";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { CopyButton } from "../ui/copy-button";
import { useHydrated } from "../ui/use-hydrated";

function remaining(expiresAt: string, now: number): string {
  const s = Math.max(0, Math.floor((new Date(expiresAt).getTime() - now) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h > 0 ? `${h}:` : ""}${String(m).padStart(h > 0 ? 2 : 1, "0")}:${String(sec).padStart(2, "0")}`;
}

/** Time left, counted in the browser. It renders after mount: the server's clock and the browser's never agree to the second, and a mismatch would break hydration. */
export function Countdown({ expiresAt }: { expiresAt: string }) {
  const [now, setNow] = useState<number | null>(null);
  useEffect(() => {
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  if (now === null)
    return (
      <span data-testid="countdown" className="font-mono">
        …
      </span>
    );
  const expired = new Date(expiresAt).getTime() <= now;
  return (
    <span data-testid="countdown" aria-live="off" className={`font-mono ${expired ? "text-rose-700" : ""}`}>
      {expired ? "expired" : `${remaining(expiresAt, now)} left`}
    </span>
  );
}

/**
 * Shows the signed credential exactly once: the server clears it as it hands it over. The
 * page keeps this component mounted after the reveal (it refreshes itself as the request
 * changes), so the token stays on screen until the person leaves; `revealable` only
 * decides whether the button is offered.
 */
export function CredentialReveal({ requestId, revealable }: { requestId: string; revealable: boolean }) {
  const router = useRouter();
  const [token, setToken] = useState<{ value: string; expiresAt: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pending, startTransition] = useTransition();
  const hydrated = useHydrated();

  if (token) {
    return (
      <div className="space-y-3">
        <Alert tone="warning">Copy it now: Latchkey will not show this credential again.</Alert>
        <textarea
          data-testid="credential-token"
          readOnly
          rows={5}
          value={token.value}
          className="w-full rounded-md border border-slate-300 bg-slate-50 p-2 font-mono text-xs break-all"
          onFocus={(e) => e.currentTarget.select()}
        />
        <div className="flex items-center gap-4">
          <CopyButton value={token.value} label="Copy credential" />
          <span className="text-sm text-slate-600">
            Valid for <Countdown expiresAt={token.expiresAt} />
          </span>
        </div>
      </div>
    );
  }
  if (!revealable && !error) return null;
  return (
    <div className="space-y-3">
      {error ? <Alert tone="error">{error}</Alert> : null}
      <p className="text-sm text-slate-700">Your credential is ready. It is shown once; reveal it when you are ready to copy it.</p>
      <Button
        disabled={pending || !hydrated}
        onClick={() =>
          startTransition(async () => {
            const result = await revealCredentialAction({ requestId });
            if (result.ok) setToken({ value: result.data.token, expiresAt: result.data.expiresAt });
            else {
              setError(result.error);
              router.refresh();
            }
          })
        }
      >
        {pending ? "Revealing…" : "Reveal credential"}
      </Button>
    </div>
  );
}
