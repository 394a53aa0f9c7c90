/**
 * Runs once when the Next.js server starts. The Node.js part checks configuration and
 * policy, so a mistake stops the server with a clear message instead of failing later.
 */
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { checkEncryptionKeyAtStart } = await import("./lib/startup-checks");
    await checkEncryptionKeyAtStart();
  }
}
