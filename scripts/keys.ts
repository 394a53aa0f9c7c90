export {};

/**
 * npm run keys:pem [-- --dir <directory>]
 *                       prints every public key a verifier must accept (the active key,
 *                       the next one published ahead, retired ones with live credentials)
 *                       as PEMs (BEGIN PUBLIC KEY), the form HAProxy's jwt_verify needs;
 *                       with --dir, writes them as the key files deploy/haproxy reads.
 * npm run keys:rotate [-- --reason "<why>"] [--now]
 *                       publishes the next key, which signs after LATCHKEY_KEY_PUBLISH_AHEAD;
 *                       with --now, rotates at once (also on the admin Keys page). Tokens
 *                       signed before keep verifying until they expire.
 * npm run keys:reseal [-- --batch <n>]
 *                       re-seals every sealed value (signing keys, credentials, request secrets)
 *                       under the current LATCHKEY_ENCRYPTION_KEY, in audited batches; resumable.
 * npm run keys:issuer [-- <url>]
 *                       prints the issuer (iss) pinned for credentials; with a URL, changes it
 *                       (audited). Credentials issued before carry the old issuer and are
 *                       refused where iss is checked: change it when none are outstanding.
 * Reads DATABASE_URL and LATCHKEY_ENCRYPTION_KEY (the configuration is validated as a whole).
 * Each command first checks that the keys it holds open what the database already holds, and
 * refuses (exit 1, naming the missing key) when they do not: writing under a key that opens
 * nothing would leave sealed data and the audit chain readable under neither key.
 */
process.env.NEXTAUTH_SECRET ??= "x".repeat(32);
process.env.OIDC_ISSUER ??= "http://unused.invalid";
process.env.OIDC_CLIENT_ID ??= "unused";
process.env.OIDC_CLIENT_SECRET ??= "unused";
const { publishedKeyPems, publishNextSigningKey, rotateSigningKey } = await import("../lib/credentials/keys");
const { writeKeyDirectory } = await import("../lib/credentials/key-files");
const { disconnectDb } = await import("../lib/db");
const { assertEncryptionKeyOpensData, resealAll } = await import("../lib/credentials/reseal");

const [command, ...rest] = process.argv.slice(2);
const option = (name: string) => {
  const at = rest.indexOf(name);
  return at >= 0 ? (rest[at + 1] ?? "") : undefined;
};
const actor = { type: "system" as const, email: `npm run keys:${command}` };
try {
  // Every command that writes sealed data or chains an event (changing the issuer does) first proves the key opens what is there.
  if (command === "pem" || command === "rotate" || (command === "issuer" && rest.length > 0)) await assertEncryptionKeyOpensData();
} catch (error) {
  console.error((error as Error).message);
  await disconnectDb();
  process.exit(1);
}
if (command === "pem") {
  const keys = await publishedKeyPems();
  const dir = option("--dir");
  if (dir) {
    const { changed, kids, left } = await writeKeyDirectory(dir, keys);
    console.log(`${changed ? "Wrote" : "Unchanged:"} ${dir}: ${kids.join(", ")}.${changed ? " Reload the verifier that reads it." : ""}`);
    if (left.length) {
      console.error(`More keys are published than there are key files; left out: ${left.join(", ")}.`);
      process.exitCode = 1;
    }
  } else {
    for (const key of keys) process.stderr.write(`kid ${key.kid} (${key.status})\n`);
    process.stdout.write(keys.map((k) => k.pem).join(""));
  }
} else if (command === "rotate") {
  const reason = option("--reason") || "rotated on demand from the command line";
  if (rest.includes("--now")) {
    const { kid, retired, prepublished } = await rotateSigningKey(actor, reason);
    console.log(
      `Signing key ${kid} is active${prepublished ? " (it was published ahead)" : ""}.${retired.length ? ` Retired ${retired.join(", ")}: it stays in JWKS until the last token it signed expires.` : ""}`,
    );
    if (!prepublished)
      console.log(
        "Verifiers that read key files refuse its credentials until they load it: npm run keys:pem -- --dir <their key directory>, then reload them.",
      );
  } else {
    const result = await publishNextSigningKey(actor, reason);
    if ("activatesAt" in result)
      console.log(
        `Signing key ${result.kid} is published and signs from ${result.activatesAt.toISOString()}. Reload verifiers that read key files before then.`,
      );
    else console.log(`Signing key ${result.kid} is active (LATCHKEY_KEY_PUBLISH_AHEAD is 0).`);
  }
} else if (command === "issuer") {
  const { changeCredentialIssuer, credentialIssuer } = await import("../lib/credentials/issuer");
  const [url] = rest;
  if (!url) console.log(`Credentials are issued by ${await credentialIssuer()}.`);
  else if (!URL.canParse(url)) {
    console.error(`"${url}" is not a URL: give the issuer as an absolute URL, e.g. https://latchkey.example.com.`);
    process.exitCode = 2;
  } else {
    const live = await (await import("../lib/db")).db.credential.count({ where: { expiresAt: { gt: new Date() }, revokedAt: null } });
    const { from, to } = await changeCredentialIssuer(actor, url);
    console.log(
      `Credentials are now issued by ${to} (were ${from ?? "not pinned"}).${live ? ` ${live} outstanding credentials carry the old issuer and are refused from now on; their owners need new ones.` : ""}`,
    );
  }
} else if (command === "reseal") {
  const batch = Number(option("--batch") ?? 200);
  try {
    const { keyId, total } = await resealAll(actor, Number.isInteger(batch) && batch > 0 ? batch : 200, (step) =>
      console.log(
        `Re-sealed ${Object.entries(step.resealed)
          .map(([kind, n]) => `${n} ${kind}`)
          .join(", ")} under ${step.keyId}.`,
      ),
    );
    console.log(
      `Everything sealed is under encryption key ${keyId} (${total} values re-sealed now). Keep the previous keys in LATCHKEY_ENCRYPTION_KEY_PREVIOUS while audit events chained under them must verify (see the README).`,
    );
  } catch (error) {
    console.error((error as Error).message);
    process.exitCode = 1;
  }
} else {
  console.error("Usage: tsx scripts/keys.ts pem [--dir <directory>] | rotate [--reason <why>] [--now] | reseal [--batch <n>] | issuer [<url>]");
  process.exitCode = 2;
}
await disconnectDb();
