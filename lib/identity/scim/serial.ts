/**
 * SCIM writes in this process run one at a time. A group change reads a person's groups and
 * hands the directory their new list; two changes interleaving (Entra sends them in
 * parallel) would otherwise each write a list without the other's group.
 */
let tail: Promise<unknown> = Promise.resolve();

export function serially<T>(work: () => Promise<T>): Promise<T> {
  const run = tail.then(work, work);
  tail = run.catch(() => undefined);
  return run;
}
