import { readMapFile, writeMapFile } from "./map-file";
import type { ProxyRuntime } from "./runtime-api";

/**
 * Identity-aware routes: a map from a credential's `jti` to the backend it may reach.
 * Each change is made in the map file, then in the running HAProxy (Runtime API), under
 * one lock. Both operations are idempotent, so a retried job converges.
 */
export interface RouteStore {
  open(jti: string, backend: string): Promise<void>;
  close(jti: string): Promise<void>;
  /**
   * Makes the running HAProxy's map what the file says. A reload reads the file while
   * routes may be changing; a change the old process took after the new one read the file
   * would be lost (an open route missing, a closed one back), so a reload is followed by this.
   */
  reconcile(): Promise<{ added: string[]; removed: string[] }>;
}

/** Runs work while no other holder of the same lock runs its own. */
export type Exclusive = <T>(work: () => Promise<T>) => Promise<T>;

/**
 * `acrossProcesses` guards each read-modify-write of the map file: every instance's worker
 * on the host writes the same file, and without it one instance's update overwrites
 * another's (the route then vanishes, or a closed one comes back, at HAProxy's next reload).
 */
export function haproxyRoutes(runtime: ProxyRuntime, mapFile: string, acrossProcesses: Exclusive = (work) => work()): RouteStore {
  // Serialize this process's updates; acrossProcesses serializes the file against the other instances'.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>) => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    // The file first: a reload that reads it from then on has the change already.
    open: (jti, backend) =>
      serial(() =>
        acrossProcesses(async () => {
          const entries = await readMapFile(mapFile);
          if (entries.get(jti) !== backend) {
            entries.set(jti, backend);
            await writeMapFile(mapFile, entries);
          }
          await runtime.setOrAddMapEntry(mapFile, jti, backend);
        }),
      ),
    close: (jti) =>
      serial(() =>
        acrossProcesses(async () => {
          const entries = await readMapFile(mapFile);
          if (entries.delete(jti)) await writeMapFile(mapFile, entries);
          await runtime.delMapEntry(mapFile, jti);
        }),
      ),
    reconcile: () =>
      serial(() =>
        acrossProcesses(async () => {
          const [wanted, running] = [await readMapFile(mapFile), await runtime.showMap(mapFile)];
          const removed = [...running.keys()].filter((jti) => !wanted.has(jti));
          for (const jti of removed) await runtime.delMapEntry(mapFile, jti);
          const added = [...wanted].filter(([jti, backend]) => running.get(jti) !== backend).map(([jti]) => jti);
          for (const jti of added) await runtime.setOrAddMapEntry(mapFile, jti, wanted.get(jti)!);
          return { added, removed };
        }),
      ),
  };
}
