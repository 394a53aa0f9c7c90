import { formatTime } from "../ui/format";
import { DataTable } from "../ui/data-table";
import { RevokeTokenButton } from "./revoke-token-button";

export interface TokenRow {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
  revokedAt: Date | null;
}

function stateOf(t: TokenRow, now: Date) {
  if (t.revokedAt) return { label: `revoked ${formatTime(t.revokedAt)}`, tone: "text-rose-700" };
  if (t.expiresAt <= now) return { label: "expired", tone: "text-slate-600" };
  return { label: `until ${formatTime(t.expiresAt)}`, tone: "text-emerald-800" };
}

export function TokenTable({ tokens }: { tokens: TokenRow[] }) {
  const now = new Date();
  return (
    <DataTable headers={["Token", "Scopes", "Created", "Valid", "Last used", ""]}>
      {tokens.map((t) => {
        const state = stateOf(t, now);
        return (
          <tr key={t.id} data-testid="token-row">
            <td className="px-4 py-2">
              <div className="font-medium">{t.name}</div>
              <div className="font-mono text-xs text-slate-600">{t.prefix}…</div>
            </td>
            <td className="px-4 py-2 font-mono text-xs">{t.scopes.join(" ")}</td>
            <td className="px-4 py-2 whitespace-nowrap">{formatTime(t.createdAt)}</td>
            <td className={`px-4 py-2 whitespace-nowrap ${state.tone}`}>{state.label}</td>
            <td className="px-4 py-2 whitespace-nowrap">
              {t.lastUsedAt ? `${formatTime(t.lastUsedAt)}${t.lastUsedIp ? ` from ${t.lastUsedIp}` : ""}` : "never"}
            </td>
            <td className="px-4 py-2">{!t.revokedAt && t.expiresAt > now ? <RevokeTokenButton tokenId={t.id} name={t.name} /> : null}</td>
          </tr>
        );
      })}
    </DataTable>
  );
}
