import type { Metadata } from "next";
import { TokenForm } from "@/components/tokens/token-form";
import { TokenTable } from "@/components/tokens/token-table";
import { EmptyState } from "@/components/ui/empty-state";
import { requirePrincipal } from "@/lib/auth/session";
import { SCOPES, tokensOf } from "@/lib/identity/tokens";
import { createPersonalTokenAction } from "@/lib/actions/tokens";

export const metadata: Metadata = { title: "API tokens" };

export default async function TokensPage() {
  const who = await requirePrincipal();
  const tokens = await tokensOf(who.id);
  // Offer only the scopes this person could be given (the server checks again).
  const scopes = Object.entries(SCOPES)
    .filter(([name]) => name !== "introspect" && name !== "scim" && (name !== "approvals:write" || who.roles.includes("approver")))
    .map(([name, description]) => ({ name, description }));
  return (
    <div className="space-y-8">
      <div>
        <h1 className="text-2xl font-bold tracking-tight">API tokens</h1>
        <p className="mt-1 text-slate-600">
          Personal tokens let scripts and the <code className="font-mono text-sm">latchkey</code> CLI act as you through the{" "}
          <a href="/api/v1/openapi.json" className="text-indigo-700 underline">
            API
          </a>
          , under the same policy and approvals as the portal. Each is shown once, kept only as a hash, and can be revoked here.
        </p>
      </div>
      <section aria-labelledby="your-tokens">
        <h2 id="your-tokens" className="mb-3 text-lg font-semibold">
          Your tokens
        </h2>
        {tokens.length === 0 ? (
          <EmptyState title="No tokens yet">Create one below when a script or the CLI needs to act as you.</EmptyState>
        ) : (
          <TokenTable tokens={tokens} />
        )}
      </section>
      <section aria-labelledby="new-token" className="max-w-xl rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
        <h2 id="new-token" className="mb-4 text-lg font-semibold">
          New personal token
        </h2>
        <TokenForm action={createPersonalTokenAction} extra={{}} scopes={scopes} maxDays={90} />
      </section>
    </div>
  );
}
