export {};

/**
 * npm run keys:pem      prints the active public signing key as a PEM (BEGIN PUBLIC KEY),
 *                       the form HAProxy's jwt_verify needs.
 * npm run keys:rotate [-- --reason "<why>"]
 *                       retires the active key and makes a new one now (also on the admin
 *                       Keys page). Tokens signed before keep verifying until they expire.
 * Reads DATABASE_URL (and LATCHKEY_ENCRYPTION_KEY to rotate).
 */
process.env.NEXTAUTH_SECRET ??= "x".repeat(32);
process.env.OIDC_ISSUER ??= "http://unused.invalid";
process.env.OIDC_CLIENT_ID ??= "unused";
process.env.OIDC_CLIENT_SECRET ??= "unused";
const { publicKeyPem, rotateSigningKey } = await import("../lib/credentials/keys");
const { disconnectDb } = await import("../lib/db");

const [command, ...rest] = process.argv.slice(2);
if (command === "pem") {
  const { kid, pem } = await publicKeyPem();
  process.stderr.write(`kid ${kid}\n`);
  process.stdout.write(pem);
} else if (command === "rotate") {
  const at = rest.indexOf("--reason");
  const reason = at >= 0 && rest[at + 1] ? rest[at + 1]! : "rotated on demand from the command line";
  const { kid, retired } = await rotateSigningKey({ type: "system", email: "npm run keys:rotate" }, reason);
  console.log(`New signing key ${kid}.${retired.length ? ` Retired ${retired.join(", ")}: it stays in JWKS until the last token it signed expires.` : ""}`);
  console.log("If HAProxy verifies credentials itself, give it the new key: npm run keys:pem > <its key file>, then reload it.");
} else {
  console.error("Usage: tsx scripts/keys.ts pem | rotate [--reason <why>]");
  process.exitCode = 2;
}
await disconnectDb();
