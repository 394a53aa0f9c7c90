/**
 * What production needs before anything else is read: a PostgreSQL of its own and an
 * identity provider. `npm run dev` fills both in with development stand-ins (an embedded
 * PostgreSQL, the demo OpenID Provider) that production never loads, so it says so plainly
 * instead of failing later on a connection.
 */
/** Problems that stop `npm start`, each; without what production needs, naming what is missing and where the development defaults live. */
export function productionProblems(source: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if (!source.DATABASE_URL) problems.push("DATABASE_URL is not set: production needs a PostgreSQL of its own (the embedded one runs only with `npm run dev`).");
  if ((source.LATCHKEY_AUTH_MODE ?? "oidc") === "oidc" && !source.OIDC_ISSUER) {
    problems.push(
      "OIDC_ISSUER is not set: production needs your identity provider (the demo one runs only with `npm run dev`), or LATCHKEY_AUTH_MODE=trusted-proxy.",
    );
  }
  // The example overlay's placeholders, and a key anyone could guess, are refused rather than run with.
  for (const [name, value] of Object.entries(source)) {
    if (value?.startsWith("replace-with"))
      problems.push(`${name} still holds the example's placeholder: generate a secret (openssl rand -base64 32) and set it.`);
  }
  for (const key of (source.LATCHKEY_ENCRYPTION_KEY ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter(Boolean)) {
    const bytes = Buffer.from(key, "base64");
    if (bytes.length > 0 && bytes.every((b) => b === 0))
      problems.push("LATCHKEY_ENCRYPTION_KEY holds a key of zero bytes (the example's): generate one with openssl rand -base64 32.");
  }
  return problems;
}
