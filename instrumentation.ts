/**
 * Runs once when the Next.js server starts: a bad configuration or policy stops the
 * server with a message naming the variable, or the file and path, instead of failing
 * on the first request.
 */
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { env } = await import("./lib/env");
  const { policy } = await import("./lib/policy/current");
  try {
    env();
    policy();
  } catch (error) {
    console.error(`[latchkey] cannot start: ${(error as Error).message}`);
    process.exit(1);
  }
}
