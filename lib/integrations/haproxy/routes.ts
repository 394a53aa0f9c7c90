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

export function haproxyRoutes(runtime: ProxyRuntime, mapFile: string): RouteStore {
  // Serialize file updates within this process; the file is owned by one Latchkey worker.
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
        const entries = await readMapFile(mapFile);
        entries.set(jti, backend);
        await writeMapFile(mapFile, entries);
      }),
    close: (jti) =>
      serial(async () => {
        await runtime.delMapEntry(mapFile, jti);
        const entries = await readMapFile(mapFile);
        if (entries.delete(jti)) await writeMapFile(mapFile, entries);
      }),
  };
}
