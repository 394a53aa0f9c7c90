import type { Metadata } from "next";
import { Alert } from "@/components/ui/alert";
import { RotateKeyButton } from "@/components/admin/rotate-key-button";
import { DataTable } from "@/components/ui/data-table";
import { EmptyState } from "@/components/ui/empty-state";
import { formatTime } from "@/components/ui/format";
import { hasRole, requirePrincipal } from "@/lib/auth/session";
import { listSigningKeys } from "@/lib/credentials/keys";
import { env } from "@/lib/env";

export const metadata: Metadata = { title: "Signing keys" };

export default async function KeysPage() {
  const who = await requirePrincipal();
  if (!hasRole(who, "admin")) return <Alert tone="error">Administration is open to admins only.</Alert>;
  const keys = await listSigningKeys();
  const days = env().LATCHKEY_KEY_ROTATION_DAYS;
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold tracking-tight">Signing keys</h1>
        <p className="mt-1 text-slate-600">
          Credentials are signed with RS256.{" "}
          {days > 0 ? `The active key is rotated every ${days} days` : "Scheduled rotation is off (LATCHKEY_KEY_ROTATION_DAYS=0)"}; a retired key stays in{" "}
          <a href="/.well-known/jwks.json" className="text-indigo-700 underline">
            JWKS
          </a>{" "}
          until the last credential it signed has expired. Private halves are encrypted at rest.
        </p>
      </div>
      {keys.length === 0 ? (
        <EmptyState title="No signing key yet">The first key is made when the first credential is issued, or when you rotate now.</EmptyState>
      ) : (
        <DataTable headers={["Key id (kid)", "State", "Created", "Retired", "Live credentials", "In JWKS"]}>
          {keys.map((k) => (
            <tr key={k.kid} data-testid="key-row">
              <td className="px-4 py-2 font-mono text-xs">{k.kid}</td>
              <td className={`px-4 py-2 font-medium ${k.status === "active" ? "text-emerald-800" : "text-slate-600"}`}>{k.status}</td>
              <td className="px-4 py-2 whitespace-nowrap">{formatTime(k.createdAt)}</td>
              <td className="px-4 py-2 whitespace-nowrap">{formatTime(k.retiredAt)}</td>
              <td className="px-4 py-2">{k.liveCredentials}</td>
              <td className="px-4 py-2">{k.published ? "published" : "withdrawn"}</td>
            </tr>
          ))}
        </DataTable>
      )}
      <section className="max-w-xl rounded-lg border border-slate-200 bg-white p-6 shadow-sm" aria-labelledby="rotate">
        <h2 id="rotate" className="text-lg font-semibold">
          Rotate now
        </h2>
        <p className="mt-1 mb-4 text-sm text-slate-600">
          For a suspected leak or a policy change. New credentials use the new key at once (the published next key, if there is one); existing ones keep working
          until they expire. If HAProxy verifies credentials itself and no next key was published, give it the new key (npm run keys:pem -- --dir) and reload
          it.
        </p>
        <RotateKeyButton />
      </section>
    </div>
  );
}
