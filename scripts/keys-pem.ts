export {};

/**
 * npm run keys:pem   prints Latchkey's active public signing key as a PEM
 * (BEGIN PUBLIC KEY), the form HAProxy's jwt_verify needs. Reads DATABASE_URL.
 */
process.env.NEXTAUTH_SECRET ??= "x".repeat(32);
process.env.OIDC_ISSUER ??= "http://unused.invalid";
process.env.OIDC_CLIENT_ID ??= "unused";
process.env.OIDC_CLIENT_SECRET ??= "unused";
const { publicKeyPem } = await import("../lib/credentials/keys");
const { disconnectDb } = await import("../lib/db");
const { kid, pem } = await publicKeyPem();
process.stderr.write(`kid ${kid}\n`);
process.stdout.write(pem);
await disconnectDb();
