import { readMapFile, writeMapFile } from "./map-file";
import type { ProxyRuntime } from "./runtime-api";

/**
 * Identity-aware routes: a map from a credential's `jti` to the backend it may reach.
 * Each change is made in the running HAProxy (Runtime API) and in the map file.
 * Both operations are idempotent, so a retried job converges.
 */
export interface RouteStore {
  open(jti: string, backend: string): Promise<void>;
  close(jti: string): Promise<void>;
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
    open: (jti, backend) =>
      serial(async () => {
        await runtime.setOrAddMapEntry(mapFile, jti, backend);
        await acrossProcesses(async () => {
          const entries = await readMapFile(mapFile);
          entries.set(jti, backend);
          await writeMapFile(mapFile, entries);
        });
      }),
    close: (jti) =>
      serial(async () => {
        await runtime.delMapEntry(mapFile, jti);
        await acrossProcesses(async () => {
          const entries = await readMapFile(mapFile);
          if (entries.delete(jti)) await writeMapFile(mapFile, entries);
        });
      }),
  };
}
