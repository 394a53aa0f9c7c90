/** A global setup that fails must fail the whole run, loudly, whatever the runner does with it. */
export async function failRunOnError<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    console.error(`[test] global setup failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  }
}
