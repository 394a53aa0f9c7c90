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

export function SignOutButton() {
  return (
    <button type="button" onClick={() => void signOut({ callbackUrl: "/signin" })} className="text-sm font-medium whitespace-nowrap text-slate-300 hover:text-white">
      Sign out
    </button>
  );
}
