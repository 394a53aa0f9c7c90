export {};

/**
 * npm run restore:fence [-- --keep <request id>,<request id>] [--reason "<why>"]
 *     after restoring the database from a backup: revokes every grant active in the restored
 *     data (except those an admin re-confirms with --keep), rotates the signing key, ends
 *     sessions, closes HAProxy routes the database holds no active grant for, rewrites the key
 *     files, and records it all (restore.fenced). Reads the portal's configuration.
 */
process.env.NEXTAUTH_SECRET ??= "x".repeat(32);
process.env.OIDC_ISSUER ??= "http://unused.invalid";
process.env.OIDC_CLIENT_ID ??= "unused";
process.env.OIDC_CLIENT_SECRET ??= "unused";
const { fenceRestoredState } = await import("../lib/approvals/restore-fence");
const { assertEncryptionKeyOpensData } = await import("../lib/credentials/reseal");
const { disconnectDb } = await import("../lib/db");

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? (args[at + 1] ?? "") : undefined;
};
const keep = (option("--keep") ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
try {
  await assertEncryptionKeyOpensData();
  const result = await fenceRestoredState({ type: "system", email: "npm run restore:fence" }, option("--reason") || "restored from a backup", keep);
  console.log(
    `Revoked ${result.revoked.length} grants active in the restored data${result.kept.length ? `; kept ${result.kept.join(", ")} as re-confirmed` : ""}.`,
  );
  console.log(
    `Signing key ${result.signingKey} is active; ${result.sessionsEnded} sessions ended; ${result.routesClosed.length} HAProxy routes without an active grant closed.`,
  );
  const unknown = keep.filter((id) => !result.kept.includes(id));
  if (unknown.length) console.error(`Not active in the restored data, so not kept: ${unknown.join(", ")}.`);
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
}
await disconnectDb();
