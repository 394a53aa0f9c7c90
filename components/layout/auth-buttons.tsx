"use client";

import { signIn, signOut } from "next-auth/react";
import { useState } from "react";
import { Button } from "../ui/button";
import { useHydrated } from "../ui/use-hydrated";

export function SignInButton({ providerName, callbackUrl }: { providerName: string; callbackUrl: string }) {
  const [busy, setBusy] = useState(false);
  const hydrated = useHydrated();
  return (
    <Button
      className="w-full"
      disabled={busy || !hydrated}
      onClick={() => {
        setBusy(true);
        void signIn("oidc", { callbackUrl });
      }}
    >
      {busy ? "Redirecting to your identity provider…" : `Sign in with ${providerName}`}
    </Button>
  );
}

/**
 * Ends the Latchkey session, then continues to the identity provider's end-session
 * endpoint when it has one (RP-initiated logout), so the next sign-in asks for the password.
 */
export function SignOutButton({ className }: { className?: string }) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      disabled={busy}
      onClick={async () => {
        setBusy(true);
        let next: string | null = null;
        try {
          const res = await fetch("/api/session/end", { cache: "no-store" });
          if (res.ok) next = ((await res.json()) as { url: string | null }).url;
        } catch {
          // The identity provider's session then stays; Latchkey's own still ends below.
        }
        await signOut({ redirect: false });
        window.location.assign(next ?? "/signin");
      }}
      className={className ?? "text-sm font-medium whitespace-nowrap text-slate-300 hover:text-white"}
    >
      {busy ? "Signing out…" : "Sign out"}
    </button>
  );
}
