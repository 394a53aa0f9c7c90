import { recordEvent, SYSTEM, type Actor } from "../audit/record";
import { db, type Tx } from "../db";
import { afterCommit } from "../db/after-commit";
import { changeGeneration, changesLive, onChange } from "../db/changes";
import { tokenIssuer } from "../env";
import { logger } from "../log";

/**
 * The issuer (`iss`) of the credentials Latchkey signs, pinned at first use and stored with
 * the keys. It defaults to the portal's URL, so without a pin, moving the portal (a new
 * NEXTAUTH_URL) would silently make every outstanding credential fail verification. Once
 * pinned, changing NEXTAUTH_URL or LATCHKEY_TOKEN_ISSUER changes nothing (a warning says so);
 * `npm run keys:issuer -- <url>` changes it on purpose, audited.
 *
 * It is kept in memory only while changes are heard (lib/db/changes.ts). A change notifies
 * every instance as it commits, as "forget everything": answers kept for credentials were
 * checked against the old issuer, so every cache of them is stale at once.
 */
const SETTING = "token-issuer";
const log = logger("credentials");
let cached: { value: string; until: number } | undefined;
let warnedFor: string | undefined;
onChange((kind) => {
  if (kind === "*") cached = undefined;
});

/** The pinned issuer, pinning the configured one if none is stored yet. */
export async function credentialIssuer(tx?: Tx): Promise<string> {
  if (cached && cached.until > Date.now() && changesLive()) return cached.value;
  const generation = changeGeneration();
  const client = tx ?? db;
  let row = await client.installationSetting.findUnique({ where: { name: SETTING } });
  let pinnedIn: Tx | undefined;
  if (!row) {
    const pin = async (t: Tx) => {
      const inserted = await t.$executeRaw`INSERT INTO "InstallationSetting" (name, value) VALUES (${SETTING}, ${tokenIssuer()}) ON CONFLICT (name) DO NOTHING`;
      if (inserted) await recordEvent(t, { actor: SYSTEM, action: "token_issuer.pinned", data: { issuer: tokenIssuer() } });
      return t.installationSetting.findUniqueOrThrow({ where: { name: SETTING } });
    };
    // In the caller's transaction when there is one (an approval issuing a credential): a transaction of its own would need a
    // second connection while the caller holds one, and with the pool's connections all held that way none would ever come.
    row = tx ? await pin(tx) : await db.$transaction(pin);
    pinnedIn = tx;
  }
  if (row.value !== tokenIssuer() && warnedFor !== row.value) {
    warnedFor = row.value;
    log.warn("the configured token issuer differs from the pinned one; credentials keep the pinned issuer (npm run keys:issuer changes it)", {
      pinned: row.value,
      configured: tokenIssuer(),
    });
  }
  const value = row.value;
  const remember = () => {
    cached = changesLive() && generation === changeGeneration() ? { value, until: Date.now() + 60_000 } : undefined;
  };
  // Pinned in the caller's transaction: kept only once it commits (rolled back, the pin never happened).
  if (pinnedIn) afterCommit(pinnedIn, remember);
  else remember();
  return value;
}

/** Changes the pinned issuer, audited: credentials issued before carry the old one and fail where `iss` is checked. */
export async function changeCredentialIssuer(actor: Actor, issuer: string): Promise<{ from: string | null; to: string }> {
  const to = new URL(issuer).toString().replace(/\/$/, "");
  return db.$transaction(async (tx) => {
    const before = await tx.installationSetting.findUnique({ where: { name: SETTING } });
    await tx.installationSetting.upsert({ where: { name: SETTING }, create: { name: SETTING, value: to }, update: { value: to, updatedAt: new Date() } });
    await recordEvent(tx, { actor, action: "token_issuer.changed", data: { from: before?.value ?? null, to } });
    await tx.$executeRaw`SELECT pg_notify('latchkey_changes', '*:token-issuer')`;
    cached = undefined;
    return { from: before?.value ?? null, to };
  });
}
