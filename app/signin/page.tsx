import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { SignInButton } from "@/components/layout/auth-buttons";
import { Alert } from "@/components/ui/alert";
import { currentPrincipal, proxySignInStatus } from "@/lib/auth/session";
import { env } from "@/lib/env";
import { callbackUrlProblem } from "@/lib/auth/callback-url";
import { queryParam, type PageSearch } from "@/lib/http/query-param";

export const metadata: Metadata = { title: "Sign in" };
export const dynamic = "force-dynamic";

const ERRORS: Record<string, string> = {
  NoRole: "Your account signed in, but none of your groups gives you a role in Latchkey. Ask the platform team to add your group to the policy.",
  NoEmail: "Your identity provider did not send an e-mail address. Ask the platform team to release the email claim.",
  EmailNotVerified: "Your identity provider says your e-mail address is not verified. Verify it there, then sign in again.",
  Deactivated: "Your account was deactivated. Ask the platform team if this is a mistake.",
  OAuthCallback: "The sign-in with your identity provider did not complete. Try again.",
  OAuthSignin: "Latchkey could not reach your identity provider. Try again in a moment.",
  AccessDenied: "Sign-in was refused.",
  SessionRequired: "Sign in to continue.",
};

export default async function SignInPage({ searchParams }: { searchParams: Promise<PageSearch> }) {
  const given = await searchParams;
  const [error, callbackUrl] = [queryParam(given.error), queryParam(given.callbackUrl)];
  if (await currentPrincipal()) redirect("/");
  // A path on this portal that sign-in will accept (lib/auth/callback-url.ts), or the home page.
  const safeCallback = callbackUrl?.startsWith("/") && !callbackUrl.startsWith("//") && callbackUrlProblem(callbackUrl) === null ? callbackUrl : "/";
  const proxy = await proxySignInStatus();
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
        <h1 className="text-2xl font-bold tracking-tight">Latchkey</h1>
        <p className="mt-1 mb-6 text-sm text-slate-600">Request, approve and receive expiring access. Every step is audited.</p>
        {proxy ? (
          <ProxySignIn {...proxy} />
        ) : (
          <>
            {error ? (
              <div className="mb-4">
                <Alert tone="error">{(Object.hasOwn(ERRORS, error) ? ERRORS[error] : undefined) ?? "Sign-in failed. Try again."}</Alert>
              </div>
            ) : null}
            <SignInButton providerName={env().OIDC_PROVIDER_NAME} callbackUrl={safeCallback} />
          </>
        )}
      </div>
    </main>
  );
}

/** Behind an identity-aware proxy there is nothing to click: the proxy signs people in, Latchkey only says why it refused. */
function ProxySignIn({ proxyName, problem }: { proxyName: string; problem: string | null }) {
  return (
    <div className="space-y-4">
      <p className="text-sm text-slate-700">Sign-in is handled by {proxyName}.</p>
      {problem ? <Alert tone="error">{problem}</Alert> : null}
    </div>
  );
}
