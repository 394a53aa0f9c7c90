import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import type { ProxyRuntime } from "@/lib/integrations/haproxy/runtime-api";

/**
 * Every instance's worker on a host keeps the same map file (LATCHKEY_HAPROXY_MAP) in step
 * with HAProxy. Two route stores stand for two instances: each serializes only its own writes.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let dir: string;

// The running HAProxy's map changes one atomic command at a time; what is tested here is the file.
const runtime: ProxyRuntime = {
  addMapEntry: async () => undefined,
  setOrAddMapEntry: async () => undefined,
  delMapEntry: async () => undefined,
  showMap: async () => new Map(),
  processId: async () => "1",
};

beforeAll(async () => {
  fx = await engineFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-map-"));
});
afterAll(async () => {
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the routes map file, written by two instances at once", () => {
  it("keeps every route opened and loses no route closed", async () => {
    const { haproxyRoutes } = await import("@/lib/integrations/haproxy/routes");
    const { mapFileLock } = await import("@/lib/integrations/haproxy/route-store");
    const { readMapFile } = await import("@/lib/integrations/haproxy/map-file");
    const mapFile = path.join(dir, "routes.map");
    await writeFile(mapFile, "");
    const instances = [0, 1].map(() => haproxyRoutes(runtime, mapFile, mapFileLock(mapFile)));
    const jtis = Array.from({ length: 40 }, (_, n) => `jti-${n}`);
    await Promise.all(jtis.map((jti, n) => instances[n % 2]!.open(jti, "app1")));
    expect([...(await readMapFile(mapFile)).keys()].sort()).toEqual([...jtis].sort());
    await Promise.all(jtis.map((jti, n) => instances[(n + 1) % 2]!.close(jti)));
    expect((await readMapFile(mapFile)).size).toBe(0);
  });
});
