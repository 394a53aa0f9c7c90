/**
 * SCIM writes in this process run one at a time, so a group's checks (its name is unique,
 * its members exist) and its changes do not interleave with another call's. A person's
 * groups stay right across instances without it: membership changes reach the directory
 * as joins and leaves applied under the person's row lock (applyDirectoryChange).
 */
let tail: Promise<unknown> = Promise.resolve();

export function serially<T>(work: () => Promise<T>): Promise<T> {
  const run = tail.then(work, work);
  tail = run.catch(() => undefined);
  return run;
}
