import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startHaproxy, type Haproxy } from "../helpers/haproxy";

/**
 * The restore fence re-syncs what lives outside the database: a route HAProxy holds for a
 * credential the restored database knows nothing of (a grant made after the backup) is closed
 * in the map file and in the running HAProxy, and the key files are rewritten with the new
 * signing key. Debian's real HAProxy 2.6 with deploy/haproxy's configuration.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let dir: string;
let haproxy: Haproxy;
let mapFile: string;
let keyDir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-fence-haproxy-"));
  mapFile = path.join(dir, "routes.map");
  keyDir = path.join(dir, "keys");
  await writeFile(mapFile, "");
  const socket = path.join(dir, "haproxy.sock");
  fx = await engineFixture({ LATCHKEY_HAPROXY_SOCKET: socket, LATCHKEY_HAPROXY_MAP: mapFile, LATCHKEY_KEY_DIR: keyDir, LATCHKEY_KEY_PUBLISH_AHEAD: "0" });
  const { publishedKeyPems } = await import("@/lib/credentials/keys");
  const { writeKeyDirectory } = await import("@/lib/credentials/key-files");
  await writeKeyDirectory(keyDir, await publishedKeyPems());
  haproxy = await startHaproxy(dir, { keyDir, mapFile });
  expect(haproxy.socket).toBe(socket);
}, 120_000);
afterAll(async () => {
  await haproxy?.stop();
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the restore fence and HAProxy", () => {
  it("closes routes the database holds no active grant for, in the map file and in HAProxy, and rewrites the key files", { timeout: 120_000 }, async () => {
    const { routeStore } = await import("@/lib/integrations/haproxy/route-store");
    const { runtimeApi } = await import("@/lib/integrations/haproxy/runtime-api");
    const { readMapFile } = await import("@/lib/integrations/haproxy/map-file");
    // A route opened for a grant made after the backup: the restored database has no credential for it.
    await routeStore().open("jti-made-after-the-backup", "app1");
    expect((await runtimeApi(haproxy.socket).showMap(mapFile)).has("jti-made-after-the-backup")).toBe(true);
    const oldKid = (await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } })).kid;

    const { fenceRestoredState } = await import("@/lib/approvals/restore-fence");
    const result = await fenceRestoredState({ type: "system", email: "test" }, "restored a backup");
    expect(result.routesClosed).toEqual(["jti-made-after-the-backup"]);
    expect((await readMapFile(mapFile)).has("jti-made-after-the-backup")).toBe(false);
    expect((await runtimeApi(haproxy.socket).showMap(mapFile)).has("jti-made-after-the-backup")).toBe(false);
    expect(result.signingKey).not.toBe(oldKid);
    const files = await Promise.all([1, 2].map((i) => readFile(path.join(keyDir, `latchkey-key-${i}.pem`), "utf8")));
    expect(files.join("")).toContain(result.signingKey);
  });
});
